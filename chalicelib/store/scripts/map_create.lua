-- KEYS: the run's hash, its children list, the parent's list of runs.  ARGV: ttl, now, run id, the run's
-- fields as JSON (an object of strings), then the children's inputs (JSON text, one an argument).
-- Create the run once: a second call (its maker retried after a crash) changes nothing and returns 0.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local ttl = tonumber(ARGV[1])
redis.call('DEL', KEYS[2])
for i = 5, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
local fields = cjson.decode(ARGV[4])
for name, value in pairs(fields) do redis.call('HSET', KEYS[1], name, value) end
redis.call('HSET', KEYS[1], 'total', #ARGV - 4, 'cursor', 0, 'done', 0, 'state', 'RUNNING')
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('ZADD', KEYS[3], tonumber(ARGV[2]), ARGV[3])
if redis.call('TTL', KEYS[3]) < ttl then redis.call('EXPIRE', KEYS[3], ttl) end
return 1
