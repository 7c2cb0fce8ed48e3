// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0.
//
// The hand-over channels' decisions, walked without a server or an io_context: subscriber
// connections are addresses, time is a number the test passes in, a wake-up is a recorded id.
#include "lease/redis/hand_over_registry.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace keyedpool::redis::detail {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

struct TestWaiter {
    int id = 0;
    std::string token;
    friend bool operator==(const TestWaiter&, const TestWaiter&) = default;
};
std::string_view token_of(const TestWaiter& waiter) {
    return waiter.token;
}

using Registry = HandOverRegistry<TestWaiter, int>;  // route: a number naming the connection

const clock::time_point t0 = clock::time_point(1000s);

class HandOverRegistryTest : public ::testing::Test {
  protected:
    /// A recorder of wake-ups, as the registry's callbacks take it.
    auto recorder() {
        return [this](const TestWaiter& waiter) { woken.push_back(waiter.id); };
    }
    /// Subscribes `waiter` on `on` and has the server confirm at `confirmed_at`.
    void subscribe_confirmed(const std::string& channel, const TestWaiter& waiter, const int* on,
                             clock::time_point confirmed_at) {
        ASSERT_TRUE(registry.subscribe(channel, waiter.token, on, *on, t0).send_subscribe);
        registry.subscribed(channel, on, true, confirmed_at, recorder());
        woken.clear();
    }

    Registry registry;
    std::vector<int> woken;
    const int conn1 = 1, conn2 = 2;  // two subscriber connections (their addresses)
    const TestWaiter a{1, "token-a"}, b{2, "token-b"}, c{3, "token-c"};
};

TEST_F(HandOverRegistryTest, AHandOverWakesOnlyTheWaiterItNames) {
    registry.add("ch", a);
    registry.add("ch", b);
    registry.add("other", c);
    registry.handed_over("ch", "token-b", recorder());
    EXPECT_EQ(woken, std::vector<int>{2});
}

TEST_F(HandOverRegistryTest, AHandOverOnAChannelNobodyHereWaitsOnIsIgnored) {
    registry.handed_over("ch", "token-a", recorder());
    EXPECT_TRUE(woken.empty());
    EXPECT_EQ(registry.channels(), 0u);
}

TEST_F(HandOverRegistryTest, TheFirstWaiterSubscribesTheOthersWaitForItsConfirmation) {
    registry.add("ch", a);
    registry.add("ch", b);
    const auto first = registry.subscribe("ch", a.token, &conn1, conn1, t0);
    EXPECT_TRUE(first.send_subscribe);
    EXPECT_FALSE(first.try_now);
    const auto second = registry.subscribe("ch", b.token, &conn1, conn1, t0);
    EXPECT_FALSE(second.send_subscribe);  // one SUBSCRIBE per channel and connection
    EXPECT_FALSE(second.try_now);         // its confirmation will wake it
    registry.subscribed("ch", &conn1, true, t0 + 1ms, recorder());
    EXPECT_EQ(woken, (std::vector<int>{1, 2}));  // a hand-over before it went live may be lost
}

TEST_F(HandOverRegistryTest, ASubscriptionLiveSinceBeforeTheAttemptNeedsNoRetry) {
    registry.add("ch", a);
    subscribe_confirmed("ch", a, &conn1, t0);
    const auto step = registry.subscribe("ch", a.token, &conn1, conn1, t0 + 5ms);
    EXPECT_FALSE(step.send_subscribe);
    EXPECT_FALSE(step.try_now);  // any hand-over since the attempt reaches it
}

TEST_F(HandOverRegistryTest, ASubscriptionThatWentLiveAfterTheAttemptMeansTryNow) {
    registry.add("ch", a);
    registry.add("ch", b);
    subscribe_confirmed("ch", a, &conn1, t0 + 10ms);
    // b's attempt was sent at t0 + 5 ms, before the subscription went live: a hand-over to b in
    // between was published to nobody.
    const auto step = registry.subscribe("ch", b.token, &conn1, conn1, t0 + 5ms);
    EXPECT_FALSE(step.send_subscribe);
    EXPECT_TRUE(step.try_now);
}

TEST_F(HandOverRegistryTest, AHandOverThatCameBeforeTheWaiterRegisteredIsFoundWhenItSubscribes) {
    registry.add("ch", a);
    subscribe_confirmed("ch", a, &conn1, t0);
    registry.handed_over("ch", "token-b", recorder());  // b's turn, b not registered yet
    EXPECT_TRUE(woken.empty());
    registry.add("ch", b);
    EXPECT_TRUE(registry.subscribe("ch", b.token, &conn1, conn1, t0 + 1ms).try_now);
    EXPECT_FALSE(registry.subscribe("ch", a.token, &conn1, conn1, t0 + 1ms).try_now);
}

TEST_F(HandOverRegistryTest, OnlyTheLastSixteenMissedHandOversAreKept) {
    registry.add("ch", a);
    subscribe_confirmed("ch", a, &conn1, t0);
    for (int i = 0; i <= static_cast<int>(Registry::max_missed); ++i) {
        registry.handed_over("ch", "missed-" + std::to_string(i), recorder());
    }
    // missed-0 fell out; missed-1..16 are kept.
    EXPECT_FALSE(registry.subscribe("ch", "missed-0", &conn1, conn1, t0 + 1ms).try_now);
    EXPECT_TRUE(registry.subscribe("ch", "missed-1", &conn1, conn1, t0 + 1ms).try_now);
    EXPECT_TRUE(registry.subscribe("ch", "missed-16", &conn1, conn1, t0 + 1ms).try_now);
}

TEST_F(HandOverRegistryTest, ARefusedSubscriptionWakesNobodyAndIsSentAgainAtTheNextTurn) {
    registry.add("ch", a);
    ASSERT_TRUE(registry.subscribe("ch", a.token, &conn1, conn1, t0).send_subscribe);
    registry.subscribed("ch", &conn1, false, t0 + 1ms, recorder());
    EXPECT_TRUE(woken.empty());  // waking would turn a refusal into a loop of attempts
    EXPECT_FALSE(registry.subscribed_on("ch", &conn1));
    EXPECT_TRUE(registry.subscribe("ch", a.token, &conn1, conn1, t0 + 2ms).send_subscribe);
}

TEST_F(HandOverRegistryTest, AClosedSubscriberWakesTheWaitersOfItsChannelsOnly) {
    registry.add("one", a);
    registry.add("two", b);
    subscribe_confirmed("one", a, &conn1, t0);
    subscribe_confirmed("two", b, &conn2, t0);
    registry.subscriber_closed(&conn1, recorder());
    EXPECT_EQ(woken, std::vector<int>{1});
    // The next turn subscribes on the new connection.
    EXPECT_TRUE(registry.subscribe("one", a.token, &conn2, conn2, t0 + 1ms).send_subscribe);
}

TEST_F(HandOverRegistryTest, AConfirmationFromAConnectionReplacedSinceChangesNothing) {
    registry.add("ch", a);
    ASSERT_TRUE(registry.subscribe("ch", a.token, &conn1, conn1, t0).send_subscribe);
    registry.subscriber_closed(&conn1, recorder());
    ASSERT_TRUE(registry.subscribe("ch", a.token, &conn2, conn2, t0 + 1ms).send_subscribe);
    woken.clear();
    registry.subscribed("ch", &conn1, true, t0 + 2ms, recorder());  // late, from the old one
    EXPECT_TRUE(woken.empty());
    // Still waiting for conn2's confirmation: no retry now, no second SUBSCRIBE.
    const auto step = registry.subscribe("ch", a.token, &conn2, conn2, t0 + 3ms);
    EXPECT_FALSE(step.send_subscribe);
    EXPECT_FALSE(step.try_now);
}

TEST_F(HandOverRegistryTest, ASubscriptionTheServerDroppedWakesItsWaitersToResubscribe) {
    registry.add("ch", a);
    subscribe_confirmed("ch", a, &conn1, t0);
    registry.dropped_by_server("ch", &conn2, recorder());  // not where it is subscribed
    EXPECT_TRUE(woken.empty());
    registry.dropped_by_server("ch", &conn1, recorder());
    EXPECT_EQ(woken, std::vector<int>{1});
    EXPECT_TRUE(registry.subscribe("ch", a.token, &conn2, conn2, t0 + 1ms).send_subscribe);
}

TEST_F(HandOverRegistryTest, AChannelWaitedOnAgainKeepsItsSubscription) {
    registry.add("ch", a);
    subscribe_confirmed("ch", a, &conn1, t0);
    EXPECT_FALSE(registry.remove("ch", a).has_value());
    EXPECT_EQ(registry.idle_channels(), 1u);
    registry.add("ch", b);
    EXPECT_EQ(registry.idle_channels(), 0u);
    const auto step = registry.subscribe("ch", b.token, &conn1, conn1, t0 + 1ms);
    EXPECT_FALSE(step.send_subscribe);  // back-to-back contention pays no SUBSCRIBE
    EXPECT_FALSE(step.try_now);
}

TEST_F(HandOverRegistryTest, AnIdleChannelAsksForNoSubscription) {
    registry.add("ch", a);
    registry.remove("ch", a);
    EXPECT_FALSE(registry.subscribe("ch", a.token, &conn1, conn1, t0).send_subscribe);
    EXPECT_FALSE(registry.subscribe("never", a.token, &conn1, conn1, t0).send_subscribe);
}

TEST_F(HandOverRegistryTest, TheOldestIdleChannelBeyondTheCapIsUnsubscribed) {
    const std::size_t n = Registry::max_idle + 1;
    for (std::size_t i = 0; i < n; ++i) {
        const std::string channel = "ch" + std::to_string(i);
        const TestWaiter w{static_cast<int>(i), "t" + std::to_string(i)};
        registry.add(channel, w);
        if (i != 1) {  // ch1 never subscribed: forgetting it needs no UNSUBSCRIBE
            subscribe_confirmed(channel, w, i % 2 ? &conn2 : &conn1, t0);
        }
    }
    for (std::size_t i = 0; i + 1 < n; ++i) {
        const TestWaiter w{static_cast<int>(i), "t" + std::to_string(i)};
        EXPECT_FALSE(registry.remove("ch" + std::to_string(i), w).has_value());
    }
    EXPECT_EQ(registry.idle_channels(), Registry::max_idle);
    const TestWaiter last{static_cast<int>(n - 1), "t" + std::to_string(n - 1)};
    const auto dropped = registry.remove("ch" + std::to_string(n - 1), last);
    ASSERT_TRUE(dropped.has_value());
    EXPECT_EQ(dropped->channel, "ch0");
    EXPECT_EQ(dropped->on, &conn1);
    EXPECT_EQ(dropped->route, conn1);
    EXPECT_EQ(registry.idle_channels(), Registry::max_idle);
    EXPECT_EQ(registry.channels(), Registry::max_idle);
    // Next over the cap: ch1, never subscribed.
    registry.add("extra", a);
    EXPECT_FALSE(registry.remove("extra", a).has_value());
    EXPECT_FALSE(registry.subscribed_on("ch0", &conn1));   // forgotten
    EXPECT_FALSE(registry.subscribed_on("ch1", nullptr));  // forgotten too
    EXPECT_TRUE(registry.subscribed_on("extra", nullptr));
    EXPECT_EQ(registry.channels(), Registry::max_idle);
}

TEST_F(HandOverRegistryTest, AHandOverNamingTwoWaitersWithOneTokenWakesBoth) {
    // One acquisition registers one waiter; the registry still wakes every match (a semaphore
    // release that names several, or a stale duplicate).
    const TestWaiter a2{4, "token-a"};
    registry.add("ch", a);
    registry.add("ch", a2);
    registry.handed_over("ch", "token-a", recorder());
    EXPECT_EQ(woken, (std::vector<int>{1, 4}));
}

TEST(ParseHandOver, ReadsTheTokenAndTheFencingTokenAndRejectsGarbage) {
    EXPECT_EQ(parse_hand_over("abc 42").token, "abc");
    EXPECT_EQ(parse_hand_over("abc 42").fence, 42u);
    EXPECT_EQ(parse_hand_over("abc").token, "abc");
    EXPECT_EQ(parse_hand_over("abc").fence, 0u);
    EXPECT_EQ(parse_hand_over("abc 4x").fence, 0u);
    EXPECT_EQ(parse_hand_over("abc -1").fence, 0u);
    EXPECT_EQ(parse_hand_over("abc 99999999999999999999999").fence, 0u);
    EXPECT_EQ(parse_hand_over("").token, "");
}

// Random registrations, removals, subscriptions, closes and hand-overs: the invariant holds after
// every step (check() asserts in debug builds; counted here too), every waiter registered is
// woken by a hand-over naming it, and the idle cap holds.
TEST(HandOverRegistryProperty, RandomRunsKeepTheInvariant) {
    std::mt19937 rng(20);
    const int conns[3] = {0, 1, 2};
    for (int run = 0; run < 30; ++run) {
        Registry registry;
        std::map<std::string, std::vector<TestWaiter>> waiting;
        int next_id = 0;
        for (int step = 0; step < 400; ++step) {
            const std::string channel = "ch" + std::to_string(rng() % 80);
            auto& here = waiting[channel];
            switch (rng() % 5) {
                case 0:
                case 1: {
                    const TestWaiter w{next_id, "t" + std::to_string(next_id)};
                    ++next_id;
                    registry.add(channel, w);
                    here.push_back(w);
                    break;
                }
                case 2:
                    if (!here.empty()) {
                        const auto at = rng() % here.size();
                        registry.remove(channel, here[at]);
                        here.erase(here.begin() + static_cast<long>(at));
                    }
                    break;
                case 3:
                    if (!here.empty()) {
                        const int* on = &conns[rng() % 3];
                        if (registry.subscribe(channel, here.front().token, on, *on, t0)
                                .send_subscribe) {
                            registry.subscribed(channel, on, rng() % 4 != 0, t0,
                                                [](const TestWaiter&) {});
                        }
                    } else {
                        registry.subscriber_closed(&conns[rng() % 3], [](const TestWaiter&) {});
                    }
                    break;
                case 4:
                    if (!here.empty()) {
                        const TestWaiter& named = here[rng() % here.size()];
                        std::vector<int> woken;
                        registry.handed_over(channel, named.token,
                                             [&](const TestWaiter& w) { woken.push_back(w.id); });
                        ASSERT_EQ(woken, std::vector<int>{named.id});
                    }
                    break;
            }
            registry.check();
            std::size_t waited = 0;
            for (const auto& [name, list] : waiting) {
                waited += list.empty() ? 0 : 1;
            }
            ASSERT_LE(registry.idle_channels(), Registry::max_idle);
            ASSERT_EQ(registry.channels(), waited + registry.idle_channels());
        }
    }
}

}  // namespace
}  // namespace keyedpool::redis::detail
