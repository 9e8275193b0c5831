-- The execution index (see ``Store.page``): functions the commit script (a single server: the index
-- changes in the same script as the execution, atomically) and the index, page and sweep scripts (a
-- Cluster, where the index has its own slot) start with. Every key is ``P .. <name>``, all under one hash tag:
--   l:<status>:<machine>  sorted set: execution IDs of that status and state machine, score = start (ms)
--   machines              sorted set: state machines with listed executions, score = the latest expiry
--   sweep                 string: where the sweep (``sweep.lua``) goes on: "<status>|<machine>|<ZSCAN cursor>"
-- Keys are kept as long as their newest entry (never shortened). Nothing in the index says when an
-- execution expires: an entry whose record is gone is dropped when a page reads it or the sweep passes it.
-- An index written before that also has ``exp`` (sorted set of "<executionId>|<machine>" scored by when
-- the records expire): ``ix_trim`` reads it a slice at a time and removes it.
local STATUSES = {'SUCCEEDED', 'FAILED', 'SUSPENDED', 'RUNNING', 'TIMED_OUT', 'ABORTED'}

local function ix_keep(key, ttl)
  local current = redis.call('TTL', key)
  if current == -1 or (current >= 0 and current < ttl) then redis.call('EXPIRE', key, ttl) end
end

local function ix_forget(p, id, machine)
  for _, status in ipairs(STATUSES) do redis.call('ZREM', p .. 'l:' .. status .. ':' .. machine, id) end
end

-- Forget the state machines whose executions have all expired by ``now``; take up to ``count`` entries
-- of an older index's ``exp`` set (forgetting those expired) until it is gone.
local function ix_trim(p, now, count)
  redis.call('ZREMRANGEBYSCORE', p .. 'machines', '-inf', now)
  local old = redis.call('ZRANGE', p .. 'exp', 0, count - 1, 'WITHSCORES')
  local taken = {}
  for i = 1, #old, 2 do
    if tonumber(old[i + 1]) <= tonumber(now) then
      local id, machine = string.match(old[i], '^([^|]*)|(.*)$')
      ix_forget(p, id, machine)
    end
    taken[#taken + 1] = old[i]
  end
  if #taken > 0 then redis.call('ZREM', p .. 'exp', unpack(taken)) end
end

-- Keep the state machine listed, and its sets, until at least ``expires``.
local function ix_extend(p, machine, expires, ttl)
  local latest = redis.call('ZSCORE', p .. 'machines', machine)
  if not latest or tonumber(latest) < tonumber(expires) then redis.call('ZADD', p .. 'machines', expires, machine) end
  for _, status in ipairs(STATUSES) do ix_keep(p .. 'l:' .. status .. ':' .. machine, ttl) end
  ix_keep(p .. 'machines', ttl)
end

-- List an execution under its status (and no other), its sets kept until ``expires``.
local function ix_put(p, id, machine, status, start, expires, now, ttl)
  ix_forget(p, id, machine)
  redis.call('ZADD', p .. 'l:' .. status .. ':' .. machine, start, id)
  ix_extend(p, machine, expires, ttl)
  ix_trim(p, now, 10)
end
