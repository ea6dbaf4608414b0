-- Prelude of the scripts that add to a set (set_add.lua, put_with_member.lua): adds `member`
-- to the set `key` and extends the set's lifetime to at least `ttl` milliseconds, never
-- shortening it.
local function add_to_set(key, member, ttl)
  redis.call('SADD', key, member)
  ttl = tonumber(ttl)
  -- PTTL is -1 for a key without expiry: give it one.
  if redis.call('PTTL', key) < ttl then
    redis.call('PEXPIRE', key, ttl)
  end
end
