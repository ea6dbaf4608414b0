-- Prelude of the scripts that put an entry in a map (map_put.lua, put_with_map_entry.lua):
-- sets `field` of the hash `key` to `value` and extends the hash's lifetime to at least `ttl`
-- milliseconds, never shortening it. A new field in a hash that already holds `max_fields`
-- fields first displaces one of them, chosen at random, so that no writer grows it further.
local function put_in_map(key, field, value, ttl, max_fields)
  if redis.call('HEXISTS', key, field) == 0
      and redis.call('HLEN', key) >= tonumber(max_fields) then
    local displaced = redis.call('HRANDFIELD', key)
    if displaced then
      redis.call('HDEL', key, displaced)
    end
  end
  redis.call('HSET', key, field, value)
  ttl = tonumber(ttl)
  -- PTTL is -1 for a key without expiry: give it one.
  if redis.call('PTTL', key) < ttl then
    redis.call('PEXPIRE', key, ttl)
  end
end
