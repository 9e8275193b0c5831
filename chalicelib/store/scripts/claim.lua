-- KEYS: the continuation.  ARGV: now, lease until, claim token, the execution's key prefix ("asl:{t}:"),
-- "force" or "", event IDs and point IDs to reserve for a branch.
-- Refusals: {reason, execution, detail, extra}: answered-at time and answer digest of a redeemed
-- continuation, the close reason of a closed one, the lease end of a busy one.
-- Claimed: {'ok', execution, point, record} or, when the point is in a unit stored apart (see
-- ``Store.claim``): {'branch', execution, point, unit path, meta, unit, units open in its group,
-- events, points, transitions, the ``a`` field of each unit it is inside...}, the events and points
-- counters after reserving the run's IDs.
local c = redis.call('HMGET', KEYS[1], 'status', 'expiresAt', 'lease', 'exec', 'answeredAt', 'reason', 'point',
                     'digest')
if not c[1] then return {'missing'} end
if c[1] == 'redeemed' then return {'redeemed', c[4], c[5] or '', c[8] or ''} end
if c[1] == 'closed' then return {'closed', c[4], c[6] or ''} end
if tonumber(c[2]) <= tonumber(ARGV[1]) and ARGV[5] ~= 'force' then return {'expired', c[4]} end
if c[1] == 'claimed' and tonumber(c[3]) > tonumber(ARGV[1]) then return {'busy', c[4], c[3]} end
local split = ARGV[4] .. 'f:' .. c[4]
local at = redis.call('HGET', split, 'p' .. c[7])
if at then
  -- "3.17.2": the units it is inside are "3" and "3.17"; its group's counter is n3.17
  local fields, parent, from = {'m', 'b' .. at, '', 'tr'}, '', 1
  while true do
    local dot = string.find(at, '.', from, true)
    if not dot then break end
    parent = string.sub(at, 1, dot - 1)
    fields[#fields + 1] = 'a' .. parent
    from = dot + 1
  end
  fields[3] = 'n' .. parent
  local got = redis.call('HMGET', split, unpack(fields))
  if got[2] then
    local events = redis.call('HINCRBY', split, 'ev', ARGV[6])
    local points = redis.call('HINCRBY', split, 'sq', ARGV[7])
    redis.call('HSET', KEYS[1], 'status', 'claimed', 'lease', ARGV[2], 'claim', ARGV[3])
    local reply = {'branch', c[4], c[7], at, got[1], got[2], got[3], tostring(events), tostring(points), got[4]}
    for n = 5, #fields do reply[#reply + 1] = got[n] end
    return reply
  end
end
local x = redis.call('GET', ARGV[4] .. 'x:' .. c[4])
if not x then return {'expired', c[4]} end
redis.call('HSET', KEYS[1], 'status', 'claimed', 'lease', ARGV[2], 'claim', ARGV[3])
return {'ok', c[4], c[7], x}
