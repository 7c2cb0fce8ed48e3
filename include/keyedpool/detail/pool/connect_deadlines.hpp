// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
#ifndef KEYEDPOOL_DETAIL_POOL_CONNECT_DEADLINES_HPP
#define KEYEDPOOL_DETAIL_POOL_CONNECT_DEADLINES_HPP

/// \file
/// The `connect_timeout`s of one shard's factory calls, on one timer. A timer per build would cost
/// a wait and a cancellation per build, and a timer-queue update (a system call when it is the
/// earliest) each time; the measured first-build cost fell by about a third without them.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/intrusive/list.hpp>
#include <boost/system/error_code.hpp>

#include <cstdint>
#include <utility>

namespace keyedpool::detail::pool {

struct DeadlineTag;
/// Unlinks itself when destroyed: an io_context destroyed with builds pending destroys their
/// flights (held by queued handlers) in no particular order, some while still listed. (The list
/// leaves its entries unlinked when it goes first.)
using DeadlineListHook =
    boost::intrusive::list_base_hook<boost::intrusive::tag<DeadlineTag>,
                                     boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;

/// What a build carries to sit in a shard's deadline list.
template <typename TimePoint>
struct DeadlineHook : DeadlineListHook {
    TimePoint deadline{};
};

/// Every deadline is "factory call started + connect_timeout", the same timeout for every build of
/// the pool, so deadlines are added in the order they fall due: the list is a FIFO, sorted by
/// construction, and the timer always waits for its head. Adding and removing are O(1).
///
/// Touched only on the shard's build executor (its strand, or the pool's single-threaded
/// executor); no lock. `Entry` derives from `DeadlineHook` and stays alive while listed (its
/// factory coroutine holds it and removes it when the factory returns).
template <typename Entry, typename Timer>
class ConnectDeadlines {
    using Clock = typename Timer::clock_type;
    using Hook = DeadlineHook<typename Clock::time_point>;
    using List = boost::intrusive::list<Entry, boost::intrusive::base_hook<DeadlineListHook>,
                                        boost::intrusive::constant_time_size<false>>;

  public:
    explicit ConnectDeadlines(const boost::asio::any_io_executor& executor) : timer_(executor) {}
    ConnectDeadlines(const ConnectDeadlines&) = delete;
    ConnectDeadlines& operator=(const ConnectDeadlines&) = delete;

    /// Lists `entry` until `deadline`. When it passes with the entry still listed, the entry is
    /// taken out and `on_expired(entry)` runs (on the executor). `on_expired` also keeps the
    /// entries' owner alive while the timer waits.
    template <typename OnExpired>
    void add(Entry& entry, typename Clock::time_point deadline, OnExpired on_expired) {
        static_cast<Hook&>(entry).deadline = deadline;
        list_.push_back(entry);
        if (!armed_) {
            arm(std::move(on_expired));
        }
    }

    /// Takes `entry` out if it is listed. When the list is left empty the timer is stopped, so an
    /// idle pool keeps no timer pending — but not at once: a check is posted, and the timer stops
    /// only if the list is still empty then. Under a stream of builds (each ending before the next
    /// starts) the timer so stays armed instead of being cancelled and re-armed for every build.
    /// `keep_alive` keeps the list's owner alive until that check has run.
    template <typename KeepAlive>
    void remove(Entry& entry, KeepAlive keep_alive) {
        if (!static_cast<DeadlineListHook&>(entry).is_linked()) {
            return;
        }
        list_.erase(list_.iterator_to(entry));
        if (list_.empty() && armed_ && !stop_posted_) {
            stop_posted_ = true;
            boost::asio::post(timer_.get_executor(), [this, keep_alive = std::move(keep_alive)] {
                stop_posted_ = false;
                if (list_.empty() && armed_) {
                    armed_ = false;
                    ++generation_;  // the cancelled wait's handler finds itself stale
                    timer_.cancel();
                }
            });
        }
    }

  private:
    template <typename OnExpired>
    void arm(OnExpired on_expired) {
        armed_ = true;
        const std::uint64_t generation = ++generation_;
        timer_.expires_at(static_cast<Hook&>(list_.front()).deadline);
        timer_.async_wait([this, generation, on_expired = std::move(on_expired)](
                              boost::system::error_code ec) mutable {
            if (generation != generation_) {
                return;  // stopped (or re-armed) since
            }
            armed_ = false;
            if (ec) {
                return;
            }
            const auto now = Clock::now();
            while (!list_.empty() && static_cast<Hook&>(list_.front()).deadline <= now) {
                Entry& expired = list_.front();
                list_.pop_front();
                on_expired(expired);
            }
            if (!list_.empty() && !armed_) {
                arm(std::move(on_expired));
            }
        });
    }

    Timer timer_;
    List list_;
    bool armed_ = false;
    bool stop_posted_ = false;
    std::uint64_t generation_ = 0;
};

}  // namespace keyedpool::detail::pool

#endif  // KEYEDPOOL_DETAIL_POOL_CONNECT_DEADLINES_HPP
