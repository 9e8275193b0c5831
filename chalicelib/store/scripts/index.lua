-- The execution index (see ``Store.page``): functions the commit script (a single server: the index
-- changes in the same script as the execution, atomically) and the index and page scripts (a Cluster,
-- where the index has its own slot) start with. Every key is ``P .. <name>``, all under one hash tag:
--   l:<status>:<machine>  sorted set: execution IDs of that status and state machine, score = start (ms)
--   exp                   sorted set: "<executionId>|<machine>", score = when its records expire
--   machines              sorted set: state machines with listed executions, score = the latest expiry
-- Keys are kept as long as their newest entry (never shortened).
local STATUSES = {'SUCCEEDED', 'FAILED', 'SUSPENDED', 'RUNNING', 'TIMED_OUT', 'ABORTED'}

local function ix_keep(key, ttl)
  local current = redis.call('TTL', key)
  if current == -1 or (current >= 0 and current < ttl) then redis.call('EXPIRE', key, ttl) end
end

local function ix_forget(p, id, machine)
  for _, status in ipairs(STATUSES) do redis.call('ZREM', p .. 'l:' .. status .. ':' .. machine, id) end
end

-- Remove up to ``count`` executions whose records have expired by ``now``.
local function ix_trim(p, now, count)
  local gone = redis.call('ZRANGEBYSCORE', p .. 'exp', '-inf', now, 'LIMIT', 0, count)
  for _, member in ipairs(gone) do
    local id, machine = string.match(member, '^([^|]*)|(.*)$')
    ix_forget(p, id, machine)
  end
  if #gone > 0 then redis.call('ZREM', p .. 'exp', unpack(gone)) end
  redis.call('ZREMRANGEBYSCORE', p .. 'machines', '-inf', now)
  return #gone
end

-- List an execution under its status (and no other) until ``expires``; trim a few expired ones.
local function ix_put(p, id, machine, status, start, expires, now, ttl)
  ix_forget(p, id, machine)
  local cell = p .. 'l:' .. status .. ':' .. machine
  redis.call('ZADD', cell, start, id)
  redis.call('ZADD', p .. 'exp', expires, id .. '|' .. machine)
  local latest = redis.call('ZSCORE', p .. 'machines', machine)
  if not latest or tonumber(latest) < tonumber(expires) then redis.call('ZADD', p .. 'machines', expires, machine) end
  ix_keep(cell, ttl)
  ix_keep(p .. 'exp', ttl)
  ix_keep(p .. 'machines', ttl)
  ix_trim(p, now, 10)
end

-- Keep a listed execution listed until at least ``expires`` (a branch's commit kept its records longer).
local function ix_extend(p, id, machine, expires, ttl)
  local member = id .. '|' .. machine
  local listed = redis.call('ZSCORE', p .. 'exp', member)
  if listed and tonumber(listed) < tonumber(expires) then
    redis.call('ZADD', p .. 'exp', expires, member)
    local latest = redis.call('ZSCORE', p .. 'machines', machine)
    if not latest or tonumber(latest) < tonumber(expires) then redis.call('ZADD', p .. 'machines', expires, machine) end
    for _, status in ipairs(STATUSES) do ix_keep(p .. 'l:' .. status .. ':' .. machine, ttl) end
    ix_keep(p .. 'exp', ttl)
    ix_keep(p .. 'machines', ttl)
  end
end
