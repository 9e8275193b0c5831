-- KEYS: the run's hash, its results (hash: index -> the child's record).  ARGV: index, status, record, items.
-- Record one child's end once (a child run again after a crash counts once), while the run runs;
-- counts it by status. Returns {1 if recorded now, children done, failed, total}.
if redis.call('HGET', KEYS[1], 'state') ~= 'RUNNING' then return {0, 0, 0, 0} end
local recorded = redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[3])
if recorded == 1 then
  redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
  redis.call('HINCRBY', KEYS[1], 'items' .. ARGV[2], tonumber(ARGV[4]))
  redis.call('HINCRBY', KEYS[1], 'done', 1)
  redis.call('EXPIRE', KEYS[2], redis.call('TTL', KEYS[1]))
end
return {recorded, tonumber(redis.call('HGET', KEYS[1], 'done')),
        tonumber(redis.call('HGET', KEYS[1], 'FAILED') or '0') + tonumber(redis.call('HGET', KEYS[1], 'TIMED_OUT') or '0')
          + tonumber(redis.call('HGET', KEYS[1], 'ABORTED') or '0'),
        tonumber(redis.call('HGET', KEYS[1], 'total'))}
