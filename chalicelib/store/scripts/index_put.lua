-- KEYS: the index's exp and machines sets (its slot).  ARGV: prefix, then "put", executionId, machine,
-- status, start, expires, now, ttl; or "move", executionId, machine, status, start (an entry whose
-- execution has another status now); or "drop", executionId, machine (its execution is gone); or
-- "extend", executionId, machine, expires, ttl (its records are kept longer).
local p, what = ARGV[1], ARGV[2]
if what == 'put' then
  ix_put(p, ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9]))
elseif what == 'extend' then
  ix_extend(p, ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]))
elseif what == 'move' then
  ix_forget(p, ARGV[3], ARGV[4])
  redis.call('ZADD', p .. 'l:' .. ARGV[5] .. ':' .. ARGV[4], ARGV[6], ARGV[3])
else
  ix_forget(p, ARGV[3], ARGV[4])
  redis.call('ZREM', p .. 'exp', ARGV[3] .. '|' .. ARGV[4])
end
return 1
