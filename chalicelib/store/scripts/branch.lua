-- The commit of one branch of a split execution (see ``Store.commit_branch``); starts with
-- continuations.lua and, on a single server, index.lua.
-- KEYS: split branches (hash), their history list, execution, its history list, the states the branches'
--       points wait at (sorted set: state -> how many), their marks (hash), [claimed continuation],
--       created continuations..., closed continuations..., [the execution's pending calls]
-- ARGV: header JSON, the branch ('' once it ended; then the iteration it starts, when ``head.start``),
--       its output (once it ended), history chunk ('': none),
--       created continuations (JSON)..., closed ones (reason, about)..., pending calls (field, value)...
-- Refused without a change: 'gone' (the branch is not stored apart now), 'conflict' (it changed since
-- it was read), 'lost' (the claim is no longer ours; a change without a claim, ``head.claim`` false,
-- has none to lose), 'last' (it ended and is the last one open: the
-- join runs in a commit of the whole execution), 'tolerance' (it failed, and the Map's failures would
-- pass ``head.tolerated``), {'moved', next, its input or false} (``head.start`` is not the Map's next
-- iteration to start now: another commit started it). Else {'ok', JSON [state, count, ...]}: where points
-- wait now (at most ``head.shown`` states), as one string.
local head = cjson.decode(ARGV[1])
local f = KEYS[1]
local field = 'b' .. head.path
local current = redis.call('HGET', f, field)
if not current then return {'gone'} end
local ver = tonumber(string.match(current, '^(%d+)|'))
if ver ~= head.ver then return {'conflict'} end
if head.claim and redis.call('HGET', KEYS[7], 'claim') ~= head.claim then return {'lost'} end
local failures = 0
if head.failed then
  failures = tonumber(redis.call('HGET', f, 'fl' .. head.group)) + 1
  if failures > head.tolerated then return {'tolerance'} end
end
local start = head.start
if start then
  local next = redis.call('HGET', f, 'q' .. head.group)
  if next ~= start.index then
    return {'moved', next, redis.call('HGET', f, 'i' .. (head.group == '' and next or head.group .. '.' .. next))}
  end
elseif head.done and tonumber(redis.call('HGET', f, head.counter)) <= 1 then
  return {'last'}
end
local version = redis.call('HINCRBY', f, 'v', 1)
if head.done then
  redis.call('HDEL', f, field)
  redis.call('HSET', f, 'r' .. head.path, ARGV[3])
  if not start then redis.call('HINCRBY', f, head.counter, -1) end
else
  redis.call('HSET', f, field, (ver + 1) .. '|' .. ARGV[2])
end
if head.failed then
  redis.call('HSET', f, 'fl' .. head.group, failures, 'x' .. head.path, failures)
end
if start then  -- the next iteration, in the place of the one that ended
  redis.call('HSET', f, 'b' .. start.path, version .. '|' .. ARGV[2], 'q' .. head.group, start.after)
  redis.call('HDEL', f, 'i' .. start.path)
  for _, point in ipairs(start.opened) do redis.call('HSET', f, 'p' .. point, start.path) end
end
redis.call('HINCRBY', f, 'tr', head.steps)
-- IDs reserved and not used go back, unless another run reserved after them
if redis.call('HGET', f, 'ev') == head.events[2] then redis.call('HSET', f, 'ev', head.events[1]) end
if redis.call('HGET', f, 'sq') == head.points[2] then redis.call('HSET', f, 'sq', head.points[1]) end
for _, point in ipairs(head.left) do redis.call('HDEL', f, 'p' .. point) end
for _, point in ipairs(head.opened) do redis.call('HSET', f, 'p' .. point, head.path) end
for i = 1, #head.waiting, 2 do redis.call('ZINCRBY', KEYS[5], head.waiting[i + 1], head.waiting[i]) end
if #head.waiting > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', 0) end
if ARGV[4] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[4])
  redis.call('LTRIM', KEYS[2], -head.chunks, -1)
end
-- Marks: history events without an ID (a heartbeat, an activity's start), one per name (its kind and
-- point: the latest replaces the one before), each "<events counter>|<order>|<event JSON>": it sorts
-- after the event of that ID, and after the marks before it.
if #head.marks > 0 then
  local after = redis.call('HGET', f, 'ev')
  for i = 1, #head.marks, 2 do
    local order = redis.call('HINCRBY', KEYS[6], '#', 1)
    redis.call('HSET', KEYS[6], head.marks[i], after .. '|' .. order .. '|' .. head.marks[i + 1])
  end
end
apply_continuations(head, 7, 5, head.ttl, true)
for n = 1, 6 do keep_at_least(KEYS[n], head.ttl) end
if head.ix then
  local ix = head.ix
  ix_extend(ix.p, ix.machine, ix.expires, head.ttl)
end
local waiting = redis.call('ZRANGE', KEYS[5], 0, head.shown - 1, 'WITHSCORES')
return {'ok', cjson.encode(waiting)}
