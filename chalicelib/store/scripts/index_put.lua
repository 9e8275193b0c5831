-- KEYS: the index's machines set (its slot).  ARGV: prefix, then "put", executionId, machine,
-- status, start, expires, now, ttl; or "extend", machine, expires, ttl (an execution's records are
-- kept longer); or "heal", then executionId, machine, status, start for each entry to change: listed
-- under that status now (its execution has another status than the one it is listed under), or, with
-- status "", dropped (its execution is gone).
local p, what = ARGV[1], ARGV[2]
if what == 'put' then
  ix_put(p, ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9]))
elseif what == 'extend' then
  ix_extend(p, ARGV[3], ARGV[4], tonumber(ARGV[5]))
else
  for i = 3, #ARGV, 4 do
    local id, machine, status = ARGV[i], ARGV[i + 1], ARGV[i + 2]
    local ttl = 0  -- no shorter than the set it was listed in
    for _, listed in ipairs(STATUSES) do
      ttl = math.max(ttl, redis.call('TTL', p .. 'l:' .. listed .. ':' .. machine))
    end
    ix_forget(p, id, machine)
    if status ~= '' and ttl > 0 then
      local cell = p .. 'l:' .. status .. ':' .. machine
      redis.call('ZADD', cell, ARGV[i + 3], id)
      ix_keep(cell, ttl)
    end
  end
end
return 1
