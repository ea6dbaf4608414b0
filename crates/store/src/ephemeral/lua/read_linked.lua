-- Reads (GET) or takes (GETDEL) a value and, in the same atomic step, reads the entries it links
-- to: the value is `<key> <key> ...\n<payload>` (sesame_core::ports::linked_value). The linked
-- keys are given without the deployment's prefix, so they are not in KEYS: a standalone Redis,
-- as Sesame requires, allows that (a cluster would not).
-- KEYS[1]: the value; ARGV[1]: the deployment's key prefix; ARGV[2]: 'GET' or 'GETDEL'.
-- Returns nil if absent, else {value, linked value or nil, ...} in the order of the links.
if ARGV[2] ~= 'GET' and ARGV[2] ~= 'GETDEL' then
  return redis.error_reply('read_linked: GET or GETDEL only')
end
local value = redis.call(ARGV[2], KEYS[1])
if not value then
  return false
end
local result = {value}
local newline = string.find(value, '\n', 1, true)
if not newline then
  return result
end
local keys = {}
for link in string.gmatch(string.sub(value, 1, newline - 1), '%S+') do
  keys[#keys + 1] = ARGV[1] .. link
end
if #keys > 0 then
  local linked = redis.call('MGET', unpack(keys))
  for i = 1, #keys do
    result[i + 1] = linked[i]
  end
end
return result
