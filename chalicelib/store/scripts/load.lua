-- KEYS: execution, its split branches (hash), their history list.
-- Returns {record or false, the branches' fields (flat) , their history chunks}, read in one step.
return {redis.call('GET', KEYS[1]), redis.call('HGETALL', KEYS[2]), redis.call('LRANGE', KEYS[3], 0, -1)}
