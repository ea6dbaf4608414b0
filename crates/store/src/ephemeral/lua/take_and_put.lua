-- Takes a record (GETDEL) and, only if it was there and of the current run, stores other
-- records, in one atomic step.
-- KEYS[1]: the record to take; KEYS[2..n]: the records to store; ARGV[1]: tag mode (see the
-- prelude); ARGV[2i-2], ARGV[2i-1]: the value and the TTL in milliseconds of KEYS[i].
-- Returns the taken value, or nil (then nothing was stored).
local tag = current_tag()
local value = untag(redis.call('GETDEL', KEYS[1]), tag)
if not value then
  return false
end
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], tag .. '|' .. ARGV[2 * i - 2], 'PX', ARGV[2 * i - 1])
end
return value
