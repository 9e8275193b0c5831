-- KEYS: execution, its split branches (hash), their history list, their marks (hash).
-- Returns {record or false, the branches' fields (flat), their history chunks, their marks (flat)}, read in one step.
return {redis.call('GET', KEYS[1]), redis.call('HGETALL', KEYS[2]), redis.call('LRANGE', KEYS[3], 0, -1),
        redis.call('HGETALL', KEYS[4])}
