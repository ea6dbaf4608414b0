-- Stores a record tagged with the current run only if no live record is there (as put.lua
-- with NX), and in the same step adds a member to a set, extending the set's lifetime to at
-- least its TTL, never shortening it (as set_add.lua): a CAS ticket and its session's record
-- of it for single logout (EphemeralStore::put_new_with_member).
-- KEYS[1]: the record; KEYS[2]: the set; ARGV[1]: tag mode (see the prelude); ARGV[2]:
-- value; ARGV[3]: TTL in milliseconds; ARGV[4]: member; ARGV[5]: the set's TTL in
-- milliseconds. Returns 1 if stored, 0 if not (the set untouched then).
local tag = current_tag()
if untag(redis.call('GET', KEYS[1]), tag) then
  return 0
end
redis.call('SET', KEYS[1], tag .. '|' .. ARGV[2], 'PX', ARGV[3])
add_to_set(KEYS[2], ARGV[4], ARGV[5])
return 1
