-- (Starts with unit.lua.)
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
local unit = read_unit(ARGV[4] .. 'f:' .. c[4], c[7], ARGV[6], ARGV[7])
if unit then
  redis.call('HSET', KEYS[1], 'status', 'claimed', 'lease', ARGV[2], 'claim', ARGV[3])
  return {'branch', c[4], c[7], unpack(unit)}
end
local x = redis.call('GET', ARGV[4] .. 'x:' .. c[4])
if not x then return {'expired', c[4]} end
redis.call('HSET', KEYS[1], 'status', 'claimed', 'lease', ARGV[2], 'claim', ARGV[3])
return {'ok', c[4], c[7], x}
