-- Adds a member to a set and extends the set's lifetime to at least the TTL, never shortening it.
-- KEYS[1]: the set; ARGV[1]: member; ARGV[2]: TTL in milliseconds.
add_to_set(KEYS[1], ARGV[1], ARGV[2])
return 0
