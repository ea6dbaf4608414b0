-- Prelude of the scripts that read or write records (tickets, sessions, codes, parked logins):
-- each record is stored as `<tag>|<value>`, where the tag names the Redis run that wrote it
-- (the server's `run_id`, new at every start). A record whose tag is not the current run's was
-- written before Redis restarted: if Redis came back from an older snapshot, that record may
-- be a ticket consumed or a session ended since (security spec F03), so it is treated as absent.
-- ARGV[1] is '' (tag with the run) or a constant tag, for operators who keep records across
-- restarts because their Redis cannot roll back (appendfsync always, no restore of old RDBs).
local function current_tag()
  if ARGV[1] ~= '' then
    return ARGV[1]
  end
  -- A plain find: a pattern match over INFO's kilobyte costs Redis twice as much.
  local info = redis.call('INFO', 'server')
  local at = string.find(info, 'run_id:', 1, true)
  if not at then
    error(redis.error_reply('run_tag: no run_id in INFO server'))
  end
  return string.sub(info, at + 7, at + 46)
end

-- The value of a stored record if it was written by run `tag`, else nil.
local function untag(stored, tag)
  if not stored then
    return nil
  end
  local bar = string.find(stored, '|', 1, true)
  if not bar or string.sub(stored, 1, bar - 1) ~= tag then
    return nil
  end
  return string.sub(stored, bar + 1)
end

