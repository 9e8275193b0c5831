-- KEYS: the continuation.  ARGV: now, lease until, claim token, execution key prefix, "force" or "".
-- Refusals: {reason, execution, detail, extra}: answered-at time and answer digest of a redeemed
-- continuation, the close reason of a closed one, the lease end of a busy one.
local c = redis.call('HMGET', KEYS[1], 'status', 'expiresAt', 'lease', 'exec', 'answeredAt', 'reason', 'point',
                     'digest')
if not c[1] then return {'missing'} end
if c[1] == 'redeemed' then return {'redeemed', c[4], c[5] or '', c[8] or ''} end
if c[1] == 'closed' then return {'closed', c[4], c[6] or ''} end
if tonumber(c[2]) <= tonumber(ARGV[1]) and ARGV[5] ~= 'force' then return {'expired', c[4]} end
if c[1] == 'claimed' and tonumber(c[3]) > tonumber(ARGV[1]) then return {'busy', c[4], c[3]} end
local x = redis.call('GET', ARGV[4] .. c[4])
if not x then return {'expired', c[4]} end
redis.call('HSET', KEYS[1], 'status', 'claimed', 'lease', ARGV[2], 'claim', ARGV[3])
return {'ok', c[4], c[7], x}
