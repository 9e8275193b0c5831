-- KEYS: execution, history list, its split branches (hash), their history list, the states their points
--       wait at (sorted set), their marks (hash), [claimed continuation],
--       created continuations..., closed continuations..., [the execution's pending calls]
-- (The commit script starts with continuations.lua and, on a single server, index.lua: the header's
-- ``ix`` lists the execution in the index too.)
-- ARGV: header JSON, record body, [history chunk], created continuations (JSON)..., closed ones (reason, about)...,
--       pending calls (field, value)..., the split branches' fields (name, value)..., the states their points
--       wait at (state, count)...
-- ``head.guard``: the branches' version and ID counters as they were read (false: there were none); the
-- branches are written anew (``head.split`` fields) or, when there are none, removed with their history.
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
    if redis.call('HGET', KEYS[7], 'claim') ~= head.claim then return {'lost'} end
  end
end
if head.guard then
  local g = redis.call('HMGET', KEYS[3], 'v', 'ev', 'sq')
  if g[1] ~= head.guard[1] or g[2] ~= head.guard[2] or g[3] ~= head.guard[3] then return {'conflict', 'split'} end
elseif redis.call('EXISTS', KEYS[3]) == 1 then
  return {'conflict', 'split'}
end
redis.call('SET', xkey, (ver + 1) .. '|' .. ARGV[2], 'EX', head.ttl)
local a = 3
if head.spill then
  redis.call('RPUSH', KEYS[2], ARGV[3]); a = 4
  redis.call('LTRIM', KEYS[2], -head.chunks, -1)
end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], head.ttl) end
redis.call('DEL', KEYS[3], KEYS[4], KEYS[5], KEYS[6])  -- what the branches' commits added is in this record now
local _
_, a = apply_continuations(head, 7, a, head.ttl, false)
if head.split > 0 then
  for n = 1, head.split do
    redis.call('HSET', KEYS[3], ARGV[a], ARGV[a + 1]); a = a + 2
  end
  redis.call('EXPIRE', KEYS[3], head.ttl)
end
if head.waiting > 0 then
  for n = 1, head.waiting do
    redis.call('ZADD', KEYS[5], ARGV[a + 1], ARGV[a]); a = a + 2
  end
  redis.call('EXPIRE', KEYS[5], head.ttl)
end
if head.ix then  -- a single server: list it in the index in the same step (see index.lua)
  local ix = head.ix
  ix_put(ix.p, ix.id, ix.machine, ix.status, ix.start, ix.expires, head.now, head.ttl)
end
return {'ok', tostring(ver + 1)}
