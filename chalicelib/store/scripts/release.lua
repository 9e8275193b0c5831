-- KEYS: the continuation.  ARGV: claim token.  Gives a claim back (the answer did not fit, or
-- the attempt failed before its commit); a claim its commit consumed is no longer there to give.
if redis.call('HGET', KEYS[1], 'claim') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'status', 'open')
redis.call('HDEL', KEYS[1], 'claim', 'lease')
return 1
