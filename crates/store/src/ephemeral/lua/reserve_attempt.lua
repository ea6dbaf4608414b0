-- Reserves one attempt on a counter (EphemeralStore::reserve_attempt), atomically.
-- KEYS[1]: counter hash {start = window start, count = attempts in the window}
-- KEYS[2]: lock, holding "locked until"
-- ARGV[1]: now, ARGV[2]: window length, ARGV[3]: counter TTL (all in seconds)
-- Returns {1, locked_until} when locked (nothing counted), else {0, rank of this attempt}.
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])

local lock = redis.call('GET', KEYS[2])
if lock then
  local locked_until = tonumber(lock)
  if not locked_until then
    return redis.error_reply('CORRUPT lock value is not a number')
  end
  if locked_until > now then
    return {1, locked_until}
  end
  -- The lock has ended: forget it and the attempts that led to it.
  redis.call('DEL', KEYS[1], KEYS[2])
end

local fields = redis.call('HMGET', KEYS[1], 'start', 'count')
local start = tonumber(fields[1])
local count = tonumber(fields[2])
if (not start) or (not count) or (now - start >= window) then
  start = now
  count = 0
end
count = count + 1
redis.call('HSET', KEYS[1], 'start', start, 'count', count)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {0, count}
