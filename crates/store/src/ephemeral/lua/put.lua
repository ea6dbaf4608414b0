-- Stores a record tagged with the current run (EphemeralStore::put / put_new / replace).
-- KEYS[1]: the record; ARGV[1]: tag mode (see the prelude); ARGV[2]: value; ARGV[3]: TTL in
-- milliseconds; ARGV[4]: 'NX' to store only if no live record is there, 'XX' only if one is
-- ('' always). Returns 1 if stored, 0 if not. A record of an earlier run does not count as
-- there.
local tag = current_tag()
if ARGV[4] == 'NX' and untag(redis.call('GET', KEYS[1]), tag) then
  return 0
end
if ARGV[4] == 'XX' and not untag(redis.call('GET', KEYS[1]), tag) then
  return 0
end
redis.call('SET', KEYS[1], tag .. '|' .. ARGV[2], 'PX', ARGV[3])
return 1
