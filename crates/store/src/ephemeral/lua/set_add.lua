-- Adds a member to a set and extends the set's lifetime to at least the TTL, never shortening it.
-- KEYS[1]: the set; ARGV[1]: member; ARGV[2]: TTL in milliseconds.
redis.call('SADD', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
-- PTTL is -1 for a key without expiry: give it one.
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 0
