-- Takes a value (GETDEL) and, only if it was there, stores other values, in one atomic step.
-- KEYS[1]: the value to take; KEYS[2..n]: the keys to store;
-- ARGV[2i-3], ARGV[2i-2]: the value and the TTL in milliseconds of KEYS[i].
-- Returns the taken value, or nil (then nothing was stored).
local value = redis.call('GETDEL', KEYS[1])
if not value then
  return false
end
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], ARGV[2 * i - 3], 'PX', ARGV[2 * i - 2])
end
return value
