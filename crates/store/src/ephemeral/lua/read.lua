-- Reads (GET) or takes (GETDEL) a record (EphemeralStore::get / take).
-- KEYS[1]: the record; ARGV[1]: tag mode (see the prelude); ARGV[2]: 'GET' or 'GETDEL'.
-- Returns the value, or nil if absent or written before Redis restarted (then it is deleted).
if ARGV[2] ~= 'GET' and ARGV[2] ~= 'GETDEL' then
  return redis.error_reply('read: GET or GETDEL only')
end
local stored = redis.call(ARGV[2], KEYS[1])
if not stored then
  return false
end
local value = untag(stored, current_tag())
if not value then
  if ARGV[2] == 'GET' then
    redis.call('DEL', KEYS[1])
  end
  return false
end
return value
