-- KEYS: the continuation.  ARGV: claim token.  Gives a claim back (the answer did not fit).
if redis.call('HGET', KEYS[1], 'claim') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'status', 'open')
redis.call('HDEL', KEYS[1], 'claim', 'lease')
return 1
