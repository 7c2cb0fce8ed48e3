// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. The Lua scripts of RedisLockService (docs/locks.md explains them).
#ifndef KEYEDPOOL_SRC_LEASE_REDIS_LOCK_SCRIPTS_HPP
#define KEYEDPOOL_SRC_LEASE_REDIS_LOCK_SCRIPTS_HPP

namespace keyedpool::redis::lock_scripts {

// The waiting queue: KEYS[3] is a list of waiting tokens in arrival order, KEYS[4] a sorted set of
// the same tokens scored by the server time (ms) until which each keeps its place. A waiter renews
// its place each time it tries; one that stops trying (its process died) is dropped once its place
// expires. The lock goes only to a caller when the queue is empty or the caller heads it, so a
// release hands over to the longest waiter and the releaser cannot barge back in. The common
// uncontended case (no queue, lock free) is tried first with the fewest server calls.

// Every script that queues or hands over uses the same five keys:
// KEYS[1] lock, KEYS[2] fence, KEYS[3] queue (tokens, arrival order), KEYS[4] queued (token →
// server time (ms) until which it keeps its place), KEYS[5] leases (token → the lease in ms it
// asked for, so a release can hand the lock over with it).

// The next fencing token (KEYS[2]), never below `epoch` << 32: the primary's Sentinel
// configuration epoch (0 without Sentinel; -1 on a Redis Cluster: the node's own configuration
// epoch, `cluster_my_epoch`, read here, which a failover or a slot import raises above every
// other node's) is the floor, so a primary promoted by a failover
// hands out tokens above every token of the primaries before it, even when the increments they
// made were lost with them (as long as fewer than 2^32 were made per resource and epoch; the
// counter only grows, so monotonicity holds regardless). Lua numbers are doubles: exact up to
// 2^53, i.e. epochs below 2^21.
#define KEYEDPOOL_LOCK_NEXT_FENCE_LUA                                    \
    "local function next_fence(epoch)\n"                                 \
    "  if epoch < 0 then\n"                                              \
    "    epoch = tonumber(string.match(redis.call('CLUSTER', 'INFO'),\n" \
    "                                  'cluster_my_epoch:(%d+)'))\n"     \
    "  end\n"                                                            \
    "  if epoch > 0 then\n"                                              \
    "    local floor = epoch * 4294967296\n"                             \
    "    if tonumber(redis.call('GET', KEYS[2]) or '0') < floor then\n"  \
    "      redis.call('SET', KEYS[2], string.format('%.0f', floor))\n"   \
    "    end\n"                                                          \
    "  end\n"                                                            \
    "  return redis.call('INCR', KEYS[2])\n"                             \
    "end\n"

// Direct hand-over, used by release once the lock is free (and by acquire when it finds the lock
// free with another waiter at the queue's head): the first waiter whose place has not expired gets
// the lock (its token, the lease it asked for, the next fencing token) and a message "<token>
// <fencing token>" on the release channel; it returns without another request. Waiters whose place
// expired (their process stopped trying) are dropped on the way.
#define KEYEDPOOL_LOCK_HAND_OFF_LUA                                                   \
    KEYEDPOOL_LOCK_NEXT_FENCE_LUA                                                     \
    "local function hand_off(channel, epoch)\n"                                       \
    "  local time = redis.call('TIME')\n"                                             \
    "  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)\n" \
    "  while true do\n"                                                               \
    "    local head = redis.call('LPOP', KEYS[3])\n"                                  \
    "    if not head then return end\n"                                               \
    "    local place = tonumber(redis.call('ZSCORE', KEYS[4], head))\n"               \
    "    local lease = redis.call('HGET', KEYS[5], head)\n"                           \
    "    redis.call('ZREM', KEYS[4], head)\n"                                         \
    "    redis.call('HDEL', KEYS[5], head)\n"                                         \
    "    if place and place > now and lease then\n"                                   \
    "      redis.call('SET', KEYS[1], head, 'PX', lease)\n"                           \
    "      local fence = next_fence(epoch)\n"                                         \
    "      redis.call('PUBLISH', channel, head .. ' ' .. fence)\n"                    \
    "      return\n"                                                                  \
    "    end\n"                                                                       \
    "  end\n"                                                                         \
    "end\n"

// ARGV[1] token, ARGV[2] lease in ms, ARGV[3] how long to keep a place in the queue in ms (0: a
// request that does not wait, which never queues), ARGV[4] the hand-over channel, ARGV[5] the
// config epoch (next_fence). Returns {1, fencing token} when acquired, else {0, remaining lease of
// the holder in ms (negative when none)}. A lock the token already holds (a hand-over that arrived
// before this request, or an acquisition whose reply came back too late to be used) is taken again
// with a fresh lease and a new fencing token.
//
// Liveness whatever the clocks: a caller trying now is alive, so its own place is renewed before
// the expired places go (a server clock running fast must not drop it as expired and queue it at
// the back again); and a free lock found headed by another live waiter is handed to that waiter
// now, as a release would have (a release may have found every place expired), so a free lock
// never waits for one particular waiter's next try.
constexpr const char* acquire = KEYEDPOOL_LOCK_HAND_OFF_LUA R"lua(
local epoch = tonumber(ARGV[5])
if redis.call('EXISTS', KEYS[3]) == 0 and redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, next_fence(epoch)}
end
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1, next_fence(epoch)}
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local keep = tonumber(ARGV[3])
if keep > 0 then
  redis.call('ZADD', KEYS[4], 'XX', now + keep, ARGV[1])
end
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)) do
  redis.call('LREM', KEYS[3], 1, gone)
  redis.call('ZREM', KEYS[4], gone)
  redis.call('HDEL', KEYS[5], gone)
end
local head = redis.call('LINDEX', KEYS[3], 0)
if not holder then
  if (not head) or head == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    if head then
      redis.call('LPOP', KEYS[3])
      redis.call('ZREM', KEYS[4], ARGV[1])
      redis.call('HDEL', KEYS[5], ARGV[1])
    end
    return {1, next_fence(epoch)}
  end
  hand_off(ARGV[4], epoch)
end
if keep > 0 then
  if redis.call('ZADD', KEYS[4], now + keep, ARGV[1]) == 1 then
    redis.call('RPUSH', KEYS[3], ARGV[1])
  end
  redis.call('HSET', KEYS[5], ARGV[1], ARGV[2])
end
return {0, redis.call('PTTL', KEYS[1])}
)lua";

// Release, and clean-up of an acquisition that ends without a lock (timeout, cancellation, an
// error, a grant that came too late): whatever the server holds for the token goes. It deletes the
// lock if the token holds it, leaves the queue, and when the lock is free hands it over to the next
// waiter. A release with nobody queued runs 3 calls (GET, DEL, EXISTS). A release clears the queue
// place too: a hand-over lost to a failover leaves the new holder's token queued on the new
// primary, where it would block the queue's head until its place expired. Returns 1 when the token
// held the lock (released), 0 when it did not (not the owner: nothing else changed but its queue
// place).
#define KEYEDPOOL_LOCK_RELEASE_LUA                                             \
    KEYEDPOOL_LOCK_HAND_OFF_LUA                                                \
    "local function release(token, channel, epoch)\n"                          \
    "  local held = redis.call('GET', KEYS[1]) == token\n"                     \
    "  if held then\n"                                                         \
    "    redis.call('DEL', KEYS[1])\n"                                         \
    "    if redis.call('EXISTS', KEYS[3]) == 0 then return 1 end\n"            \
    "  end\n"                                                                  \
    "  local removed = redis.call('LREM', KEYS[3], 1, token)\n"                \
    "  if removed > 0 then\n"                                                  \
    "    redis.call('ZREM', KEYS[4], token)\n"                                 \
    "    redis.call('HDEL', KEYS[5], token)\n"                                 \
    "  end\n"                                                                  \
    "  if (held or removed > 0) and redis.call('EXISTS', KEYS[1]) == 0 then\n" \
    "    hand_off(channel, epoch)\n"                                           \
    "  end\n"                                                                  \
    "  if held then return 1 end\n"                                            \
    "  return 0\n"                                                             \
    "end\n"

// ARGV[1] token, ARGV[2] release channel, ARGV[3] the config epoch.
constexpr const char* release = KEYEDPOOL_LOCK_RELEASE_LUA R"lua(
return release(ARGV[1], ARGV[2], tonumber(ARGV[3]))
)lua";

// A hand-over inside one process: the holder ARGV[1] left the lock to the next caller of its own
// process (the only one of that process contending for it), which takes it over under its token
// ARGV[3] with its lease ARGV[4] (ms) and a new fencing token — unless callers of other processes
// are queued here: they come first (FIFO across processes), so the lock is released to the
// queue's head instead, as by release. One request, 4 calls (GET, EXISTS, SET, INCR) when nobody
// else is queued. ARGV[2] release channel, ARGV[5] the config epoch. Returns {1, fencing token}
// when taken over, else {0, release's result}.
constexpr const char* pass = KEYEDPOOL_LOCK_RELEASE_LUA R"lua(
local epoch = tonumber(ARGV[5])
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
  return {1, next_fence(epoch)}
end
return {0, release(ARGV[1], ARGV[2], epoch)}
)lua";

#undef KEYEDPOOL_LOCK_RELEASE_LUA
#undef KEYEDPOOL_LOCK_HAND_OFF_LUA
#undef KEYEDPOOL_LOCK_NEXT_FENCE_LUA

// KEYS[1] lock key; ARGV[1] token, ARGV[2] lease in ms. 1 when extended, 0 when not the owner.
constexpr const char* renew = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
)lua";

}  // namespace keyedpool::redis::lock_scripts

#endif  // KEYEDPOOL_SRC_LEASE_REDIS_LOCK_SCRIPTS_HPP
