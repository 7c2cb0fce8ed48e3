// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_DETAIL_POOL_WAITER_BATCH_HPP
#define KEYEDPOOL_DETAIL_POOL_WAITER_BATCH_HPP

/// \file
/// Completing the waiters of a flight in batches: consecutive waiters whose handlers share an
/// executor are resumed by one posted function (at most `max_batch` of them, so other work on
/// that executor is not held up for long). A herd's wake-up then costs about one handler call per
/// waiter rather than one post each.

#include <keyedpool/detail/pool/waiter.hpp>

#include <boost/asio/post.hpp>

#include <cstddef>
#include <exception>
#include <utility>

namespace keyedpool::detail::pool {

inline constexpr std::size_t max_batch = 128;

/// Waiters (owned, unlinked from any flight) resumed by one posted function. If it is destroyed
/// without having run (its executor's context was destroyed) the waiters are dropped unresumed;
/// if a handler throws, the waiters after it are posted again, so none is lost.
template <typename Client>
class Batch {
  public:
    using Result = GetResult<Client>;

    Batch(Result result, WaiterList<Client>&& waiters)
        : result_(std::move(result)), waiters_(std::move(waiters)) {}
    Batch(Batch&& other) noexcept
        : result_(std::move(other.result_)),
          waiters_(std::move(other.waiters_)),
          running_(other.running_) {}
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;
    Batch& operator=(Batch&&) = delete;

    ~Batch() {
        if (waiters_.empty()) {
            return;
        }
        if (running_) {  // a handler threw: the rest still get their result
            try {
                post(Batch(std::move(result_), std::move(waiters_)));
                return;
            } catch (...) {  // out of memory: drop them rather than throw from a destructor
            }
        }
        waiters_.clear_and_dispose([](Waiter<Client>* w) { delete w; });
    }

    void operator()() {
        running_ = true;
        while (!waiters_.empty()) {
            Waiter<Client>& waiter = waiters_.front();
            waiters_.pop_front();
            waiter.invoke(result_);  // destroys the waiter before calling its handler
        }
    }

    /// Posts the batch to its first waiter's executor. Precondition: not empty.
    static void post(Batch batch) {
        // The executor is copied before the batch moves into the posted function: once posted,
        // another thread may run it and destroy the waiters.
        boost::asio::any_io_executor executor = batch.waiters_.front().executor();
        boost::asio::post(executor, std::move(batch));
    }

  private:
    Result result_;
    WaiterList<Client> waiters_;
    bool running_ = false;
};

/// Completes `waiters` (owned, unlinked) with `result`, in order: one post per run of at most
/// `max_batch` waiters sharing an executor. Never invokes a handler inline. Returns how many.
template <typename Client>
std::size_t complete_waiters(WaiterList<Client>& waiters, const GetResult<Client>& result) {
    std::size_t count = 0;
    while (!waiters.empty()) {
        WaiterList<Client> run;
        const boost::asio::any_io_executor& executor = waiters.front().executor();
        std::size_t size = 0;
        auto end = waiters.begin();
        while (end != waiters.end() && size < max_batch && end->executor() == executor) {
            ++end;
            ++size;
        }
        run.splice(run.end(), waiters, waiters.begin(), end);
        count += size;
        Batch<Client>::post(Batch<Client>(result, std::move(run)));
    }
    return count;
}

/// Completes one waiter (owned, unlinked) with `result`.
template <typename Client>
void complete_waiter(Waiter<Client>& waiter, GetResult<Client> result) {
    WaiterList<Client> one;
    one.push_back(waiter);
    Batch<Client>::post(Batch<Client>(std::move(result), std::move(one)));
}

}  // namespace keyedpool::detail::pool

#endif  // KEYEDPOOL_DETAIL_POOL_WAITER_BATCH_HPP
