-- Takes a value (GETDEL) and, in the same atomic step, reads the entry it links to: the value is
-- `<linked key>\n<payload>` (sesame_core::ports::linked_value); the linked key is given without
-- the deployment's prefix, so it is not in KEYS (a standalone Redis, as Sesame requires, allows
-- that; a cluster would not).
-- KEYS[1]: the value to take; ARGV[1]: the deployment's key prefix.
-- Returns nil if absent, else {value, linked value or nil}.
local value = redis.call('GETDEL', KEYS[1])
if not value then
  return false
end
local newline = string.find(value, '\n', 1, true)
if not newline then
  return {value, false}
end
return {value, redis.call('GET', ARGV[1] .. string.sub(value, 1, newline - 1))}
