-- KEYS: an execution's pending calls.  ARGV: field, now, lease seconds.
-- Take one pending call whose lease has ended (its maker died or is late): its value "<since>|<call>"
-- is stamped with now, so no other taker makes it during the new lease. Returns the call, or false.
local value = redis.call('HGET', KEYS[1], ARGV[1])
if not value then return false end
local since, call = string.match(value, '^([^|]+)|(.*)$')
if tonumber(since) + tonumber(ARGV[3]) > tonumber(ARGV[2]) then return false end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. call)
return call
