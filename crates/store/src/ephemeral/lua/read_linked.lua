-- Reads (GET) or takes (GETDEL) a record and, in the same atomic step, reads the records it links
-- to: the value is `<key> <key> ...\n<payload>` (sesame_core::ports::linked_value). The linked
-- keys are given without the deployment's prefix, so they are not in KEYS: a standalone Redis,
-- as Sesame requires, allows that (a cluster would not).
-- KEYS[1]: the record; ARGV[1]: tag mode (see the prelude); ARGV[2]: the deployment's key
-- prefix; ARGV[3]: 'GET' or 'GETDEL'.
-- Returns nil if absent (or of an earlier run), else {value, linked value or nil, ...} in the
-- order of the links; a linked record of an earlier run reads as nil.
if ARGV[3] ~= 'GET' and ARGV[3] ~= 'GETDEL' then
  return redis.error_reply('read_linked: GET or GETDEL only')
end
local tag = current_tag()
local stored = redis.call(ARGV[3], KEYS[1])
if not stored then
  return false
end
local value = untag(stored, tag)
if not value then
  if ARGV[3] == 'GET' then
    redis.call('DEL', KEYS[1])
  end
  return false
end
local result = {value}
local newline = string.find(value, '\n', 1, true)
if not newline then
  return result
end
local keys = {}
for link in string.gmatch(string.sub(value, 1, newline - 1), '%S+') do
  keys[#keys + 1] = ARGV[2] .. link
end
if #keys > 0 then
  local linked = redis.call('MGET', unpack(keys))
  for i = 1, #keys do
    -- false (absent) stays false; a record of an earlier run becomes false too.
    result[i + 1] = untag(linked[i], tag) or false
  end
end
return result
