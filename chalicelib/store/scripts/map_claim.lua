-- KEYS: the run's hash, its leases (sorted set: chunk start -> lease end).  ARGV: now, lease seconds, chunk size.
-- The next chunk of children to run: one whose lease ran out (its worker died), else the next unclaimed one.
-- Returns the chunk's first index, or -1 when nothing is left to claim (-2: the run has ended).
if redis.call('HGET', KEYS[1], 'state') ~= 'RUNNING' then return -2 end
local now, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1)
if expired[1] then
  redis.call('ZADD', KEYS[2], now + lease, expired[1])
  return tonumber(expired[1])
end
local cursor = tonumber(redis.call('HGET', KEYS[1], 'cursor'))
if cursor >= tonumber(redis.call('HGET', KEYS[1], 'total')) then return -1 end
redis.call('HSET', KEYS[1], 'cursor', cursor + tonumber(ARGV[3]))
redis.call('ZADD', KEYS[2], now + lease, cursor)
redis.call('EXPIRE', KEYS[2], redis.call('TTL', KEYS[1]))
return cursor
