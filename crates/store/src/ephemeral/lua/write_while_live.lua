-- Makes several writes only while a guard record is live, all at once
-- (EphemeralStore::write_while_live): what an SSO session issues, so that a logout either came
-- before (nothing is written) or comes after and finds it all.
-- KEYS[1]: the guard; KEYS[2 .. 1 + n]: records; the other KEYS: sets.
-- ARGV[1]: tag mode (see the prelude); ARGV[2]: n; then a value and a TTL in milliseconds for
-- each record, then a member and a TTL in milliseconds for each set.
-- Returns 1 if written, 0 if the guard is absent (or of an earlier run).
local tag = current_tag()
if not untag(redis.call('GET', KEYS[1]), tag) then
  return 0
end
local records = tonumber(ARGV[2])
local at = 3
for i = 1, records do
  redis.call('SET', KEYS[1 + i], tag .. '|' .. ARGV[at], 'PX', ARGV[at + 1])
  at = at + 2
end
for k = 2 + records, #KEYS do
  add_to_set(KEYS[k], ARGV[at], ARGV[at + 1])
  at = at + 2
end
return 1
