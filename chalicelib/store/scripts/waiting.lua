-- KEYS: an execution's split branches (hash), the states their points wait at (sorted set).
-- ARGV: how many states at most.
-- Returns false when the execution is not stored branch by branch now, else where its points wait:
-- {state, count, ...}, read in one step (the branches exist only while the execution is SUSPENDED).
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
