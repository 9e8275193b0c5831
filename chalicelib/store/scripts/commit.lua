-- KEYS: execution, history list, [claimed continuation], created continuations..., closed continuations...,
--       [the execution's pending calls]
-- (On a single server the commit script starts with index.lua, and the header's ``ix`` lists the
-- execution in the index too.)
-- ARGV: header JSON, record body, [history chunk], created continuations (JSON)..., closed ones (reason, about)...,
--       pending calls (field, value)...
local head = cjson.decode(ARGV[1])
local xkey = KEYS[1]
local ver = 0
local current = redis.call('GETRANGE', xkey, 0, 20)
if head.create then
  if current ~= '' then return {'exists'} end
else
  if current == '' then return {'gone'} end
  ver = tonumber(string.match(current, '^(%d+)|'))
  if ver ~= head.ver then return {'conflict', tostring(ver)} end
  if head.claim then
    if redis.call('HGET', KEYS[3], 'claim') ~= head.claim then return {'lost'} end
  end
end
redis.call('SET', xkey, (ver + 1) .. '|' .. ARGV[2], 'EX', head.ttl)
local k, a = 3, 3
if head.spill then
  redis.call('RPUSH', KEYS[2], ARGV[3]); a = 4
  redis.call('LTRIM', KEYS[2], -head.chunks, -1)
end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], head.ttl) end
if head.claim then
  if head.outcome == 'redeemed' then
    redis.call('HSET', KEYS[3], 'status', 'redeemed', 'answeredAt', head.now, 'answer', head.answer,
               'about', head.about, 'digest', head.digest)
  else
    redis.call('HSET', KEYS[3], 'status', 'closed', 'reason', head.outcome, 'about', head.about)
  end
  redis.call('HDEL', KEYS[3], 'claim', 'lease')
  k = 4
end
for n = 1, head.created do
  local rec = cjson.decode(ARGV[a]); a = a + 1
  for name, value in pairs(rec) do
    if name ~= 'ttl' then redis.call('HSET', KEYS[k], name, value) end
  end
  redis.call('EXPIRE', KEYS[k], rec.ttl)
  k = k + 1
end
for n = 1, head.closed do
  local status = redis.call('HGET', KEYS[k], 'status')
  if status == 'open' or status == 'claimed' then
    redis.call('HSET', KEYS[k], 'status', 'closed', 'reason', ARGV[a], 'about', ARGV[a + 1])
    redis.call('HDEL', KEYS[k], 'claim', 'lease')
  end
  a = a + 2
  k = k + 1
end
if head.calls > 0 then
  for n = 1, head.calls do
    redis.call('HSET', KEYS[k], ARGV[a], ARGV[a + 1])
    a = a + 2
  end
  redis.call('EXPIRE', KEYS[k], head.ttl)
end
if head.ix then  -- a single server: list it in the index in the same step (see index.lua)
  local ix = head.ix
  ix_put(ix.p, ix.id, ix.machine, ix.status, ix.start, ix.expires, head.now, head.ttl)
end
return {'ok', tostring(ver + 1)}
