-- Gives back one counted attempt, never going below zero (EphemeralStore::forgive_attempt).
-- KEYS[1]: counter hash {start, count}. The TTL is left as it is.
local count = tonumber(redis.call('HGET', KEYS[1], 'count'))
if count and count > 0 then
  redis.call('HSET', KEYS[1], 'count', count - 1)
end
return 0
