-- KEYS: the run's hash.  ARGV: the run's end state, now, error, cause.  End a RUNNING run: 1 for the one
-- caller that ended it (it resumes the parent), 0 if it had ended already.
if redis.call('HGET', KEYS[1], 'state') ~= 'RUNNING' then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'stopDate', ARGV[2], 'error', ARGV[3], 'cause', ARGV[4])
return 1
