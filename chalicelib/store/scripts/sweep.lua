-- KEYS: the index's sweep, machines and exp keys (its slot).  ARGV: prefix, now, count.
-- The next slice of the index for ``Store.sweep_index``: about ``count`` entries, flat (executionId,
-- machine, ...), read with ZSCAN from where the last slice stopped, set after set (every status of
-- each state machine, machines in name order), round and round. The caller drops the entries whose
-- record is gone; ZSCAN returns every entry that stays in a set for a whole pass over it.
local p, now, count = ARGV[1], ARGV[2], tonumber(ARGV[3])
ix_trim(p, now, 100)
local ttl = redis.call('TTL', p .. 'machines')
local machines = redis.call('ZRANGE', p .. 'machines', 0, -1)
if ttl <= 0 or #machines == 0 then
  redis.call('DEL', p .. 'sweep')
  return {}
end
table.sort(machines)
local cells = {}
for _, machine in ipairs(machines) do
  for _, status in ipairs(STATUSES) do cells[#cells + 1] = {status, machine} end
end
local at, cursor = 1, '0'
local state = redis.call('GET', p .. 'sweep')
if state then
  local status, machine, scanned = string.match(state, '^([^|]*)|([^|]*)|(%d+)$')
  for i, cell in ipairs(cells) do
    if cell[1] == status and cell[2] == machine then at, cursor = i, scanned end
  end
end
local out, passed, calls = {}, 0, 0
while #out < 2 * count and passed < #cells and calls < #cells + 100 do
  local status, machine = cells[at][1], cells[at][2]
  local got = redis.call('ZSCAN', p .. 'l:' .. status .. ':' .. machine, cursor, 'COUNT', count - #out / 2)
  calls = calls + 1
  for i = 1, #got[2], 2 do out[#out + 1] = got[2][i]; out[#out + 1] = machine end
  cursor = got[1]
  if cursor == '0' then at, passed = at % #cells + 1, passed + 1 end
end
redis.call('SET', p .. 'sweep', cells[at][1] .. '|' .. cells[at][2] .. '|' .. cursor, 'EX', ttl)
return out
