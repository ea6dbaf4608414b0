-- Puts an entry in a map (EphemeralStore::map_put), as the prelude says.
-- KEYS[1]: the map; ARGV[1]: field; ARGV[2]: value; ARGV[3]: TTL in milliseconds;
-- ARGV[4]: most fields the map holds.
put_in_map(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
return 0
