-- Stores a record tagged with the current run only if no live record is there (as put.lua
-- with NX), and in the same step puts an entry in a map (as map_put.lua): a CAS ticket and its
-- session's record of it for single logout (EphemeralStore::put_new_with_map_entry).
-- KEYS[1]: the record; KEYS[2]: the map; ARGV[1]: tag mode (see the prelude); ARGV[2]:
-- value; ARGV[3]: TTL in milliseconds; ARGV[4]: field; ARGV[5]: the entry's value; ARGV[6]:
-- the map's TTL in milliseconds; ARGV[7]: most fields the map holds. Returns 1 if stored, 0
-- if not (the map untouched then).
local tag = current_tag()
if untag(redis.call('GET', KEYS[1]), tag) then
  return 0
end
redis.call('SET', KEYS[1], tag .. '|' .. ARGV[2], 'PX', ARGV[3])
put_in_map(KEYS[2], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
return 1
