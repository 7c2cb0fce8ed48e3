// Copyright (c) 2026 The keyedpool authors. Distributed under the Boost Software License,
// Version 1.0. The Lua scripts of RedisSemaphoreService (docs/semaphores.md explains them).
#ifndef KEYEDPOOL_SRC_LEASE_REDIS_SEMAPHORE_SCRIPTS_HPP
#define KEYEDPOOL_SRC_LEASE_REDIS_SEMAPHORE_SCRIPTS_HPP

namespace keyedpool::redis::semaphore_scripts {

// Every script takes the same six keys of a resource:
// KEYS[1] holders (sorted set: token → server time (ms) its lease ends), KEYS[2] weights (hash:
// token → permits it holds), KEYS[3] queue (list of waiting tokens, arrival order), KEYS[4]
// queued (sorted set: waiting token → server time (ms) until which it keeps its place), KEYS[5]
// asks (hash: waiting token → "<permits> <lease ms>"), KEYS[6] limit (the latest acquisition's).
//
// A holder whose lease ended is dropped by the next script that looks (server time), so a crashed
// process's permits come back within one lease. Permits go first come, first served: a release
// (or a reclaimed lease) hands them to the waiters at the head of the queue for as long as they
// fit, and publishes each one's token on the hand-over channel; a waiter that does not fit stops
// the hand-over (a heavy waiter is not overtaken by lighter ones behind it).
#define KEYEDPOOL_SEMAPHORE_COMMON_LUA                                                \
    "local function now_ms()\n"                                                       \
    "  local time = redis.call('TIME')\n"                                             \
    "  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)\n"      \
    "end\n"                                                                           \
    "local function in_use()\n"                                                       \
    "  local n = 0\n"                                                                 \
    "  for _, w in ipairs(redis.call('HVALS', KEYS[2])) do n = n + tonumber(w) end\n" \
    "  return n\n"                                                                    \
    "end\n"                                                                           \
    "local function reclaim(now)\n"                                                   \
    "  for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do\n" \
    "    redis.call('ZREM', KEYS[1], gone)\n"                                         \
    "    redis.call('HDEL', KEYS[2], gone)\n"                                         \
    "  end\n"                                                                         \
    "end\n"                                                                           \
    "local function leave_queue(token)\n"                                             \
    "  redis.call('LREM', KEYS[3], 1, token)\n"                                       \
    "  redis.call('ZREM', KEYS[4], token)\n"                                          \
    "  redis.call('HDEL', KEYS[5], token)\n"                                          \
    "end\n"                                                                           \
    "local function keep_while_held()\n"                                              \
    "  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')\n"            \
    "  if last[2] then\n"                                                             \
    "    local until_ms = string.format('%.0f', tonumber(last[2]) + 1000)\n"          \
    "    redis.call('PEXPIREAT', KEYS[1], until_ms)\n"                                \
    "    redis.call('PEXPIREAT', KEYS[2], until_ms)\n"                                \
    "  end\n"                                                                         \
    "end\n"                                                                           \
    "local function hold(token, permits, lease, now)\n"                               \
    "  redis.call('ZADD', KEYS[1], now + lease, token)\n"                             \
    "  redis.call('HSET', KEYS[2], token, permits)\n"                                 \
    "end\n"                                                                           \
    "local function hand_off(channel, now, caller)\n"                                 \
    "  local limit = tonumber(redis.call('GET', KEYS[6]) or '0')\n"                   \
    "  local used = in_use()\n"                                                       \
    "  while true do\n"                                                               \
    "    local head = redis.call('LINDEX', KEYS[3], 0)\n"                             \
    "    if not head then break end\n"                                                \
    "    local place = tonumber(redis.call('ZSCORE', KEYS[4], head))\n"               \
    "    local ask = redis.call('HGET', KEYS[5], head)\n"                             \
    "    if place and place > now and ask then\n"                                     \
    "      local space = string.find(ask, ' ', 1, true)\n"                            \
    "      local permits = tonumber(string.sub(ask, 1, space - 1))\n"                 \
    "      if used + permits > limit then break end\n"                                \
    "      hold(head, permits, tonumber(string.sub(ask, space + 1)), now)\n"          \
    "      used = used + permits\n"                                                   \
    "      if head ~= caller then redis.call('PUBLISH', channel, head) end\n"         \
    "    end\n"                                                                       \
    "    redis.call('LPOP', KEYS[3])\n"                                               \
    "    redis.call('ZREM', KEYS[4], head)\n"                                         \
    "    redis.call('HDEL', KEYS[5], head)\n"                                         \
    "  end\n"                                                                         \
    "  keep_while_held()\n"                                                           \
    "end\n"

// ARGV[1] token, ARGV[2] permits, ARGV[3] lease in ms, ARGV[4] how long to keep a place in the
// queue in ms (0: a request that does not wait, which never queues), ARGV[5] the limit, ARGV[6]
// the hand-over channel. Returns {1, 0} when the token holds the permits (taken now, handed over
// before this request, or a grant taken again with a fresh lease), else {0, ms until the first
// holder's lease ends (-1: no holder)}.
constexpr const char* acquire = KEYEDPOOL_SEMAPHORE_COMMON_LUA R"lua(
local token, permits, lease, keep = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms()
redis.call('SET', KEYS[6], ARGV[5], 'PX', lease + math.max(keep, 1000))
if redis.call('EXISTS', KEYS[1], KEYS[3]) == 0 then
  if permits <= tonumber(ARGV[5]) then
    hold(token, permits, lease, now)
    keep_while_held()
    return {1, 0}
  end
end
reclaim(now)
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)) do
  leave_queue(gone)
end
if redis.call('ZSCORE', KEYS[1], token) then
  hold(token, permits, lease, now)
  leave_queue(token)
  keep_while_held()
  return {1, 0}
end
hand_off(ARGV[6], now, token)
if redis.call('ZSCORE', KEYS[1], token) then
  return {1, 0}
end
if redis.call('LLEN', KEYS[3]) == 0 and in_use() + permits <= tonumber(ARGV[5]) then
  hold(token, permits, lease, now)
  keep_while_held()
  return {1, 0}
end
if keep > 0 then
  if redis.call('ZADD', KEYS[4], now + keep, token) == 1 then
    redis.call('RPUSH', KEYS[3], token)
  end
  redis.call('HSET', KEYS[5], token, ARGV[2] .. ' ' .. ARGV[3])
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] then
  return {0, math.max(0, tonumber(first[2]) - now)}
end
return {0, -1}
)lua";

// Release, and clean-up of an acquisition that ends without permits (timeout, cancellation, an
// error, a grant that came too late): whatever the server holds for the token goes — its queue
// place and its permits — and the permits free now go to the waiters that fit. ARGV[1] token,
// ARGV[2] hand-over channel. Returns 1 when the token held permits whose lease had not ended, else
// 0 (not the owner).
constexpr const char* release = KEYEDPOOL_SEMAPHORE_COMMON_LUA R"lua(
local now = now_ms()
leave_queue(ARGV[1])
local lease_end = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
reclaim(now)
hand_off(ARGV[2], now, '')
if lease_end and lease_end > now then
  return 1
end
return 0
)lua";

// ARGV[1] token, ARGV[2] lease in ms. 1 when extended, 0 when the token holds no permits (never
// did, released, or its lease ended: they may be someone else's now).
constexpr const char* renew = KEYEDPOOL_SEMAPHORE_COMMON_LUA R"lua(
local now = now_ms()
local lease_end = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if lease_end and lease_end > now then
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
  keep_while_held()
  return 1
end
return 0
)lua";

#undef KEYEDPOOL_SEMAPHORE_COMMON_LUA

}  // namespace keyedpool::redis::semaphore_scripts

#endif  // KEYEDPOOL_SRC_LEASE_REDIS_SEMAPHORE_SCRIPTS_HPP
