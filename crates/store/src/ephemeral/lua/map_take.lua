-- Reads and deletes a map in one step (EphemeralStore::map_take).
-- KEYS[1]: the map. Returns its values (empty if absent).
local values = redis.call('HVALS', KEYS[1])
redis.call('DEL', KEYS[1])
return values
