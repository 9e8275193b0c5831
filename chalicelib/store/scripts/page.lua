-- KEYS: the index's machines and exp sets (its slot).  ARGV: prefix, now, status or "*", machine or "*",
-- cursor score or "" (the first page), cursor executionId, limit.
-- Trims (``ix_trim``), then merges the sets the filter names, newest first (start
-- time, then ID, both descending), from after the cursor: returns up to limit + 1 entries, flat:
-- executionId, start, machine, status. Each set is read in batches, so a page costs about
-- limit + sets * batch entries, whatever the index holds.
local p, now, status, machine, cs, cid = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local limit = tonumber(ARGV[7])
ix_trim(p, now, 100)
local machines = {machine}
if machine == '*' then machines = redis.call('ZRANGE', p .. 'machines', 0, -1) end
local statuses = {status}
if status == '*' then statuses = STATUSES end
local batch = math.min(limit + 1, 100)

local function refill(c)
  local top, tied = '+inf', 0
  if c.s ~= '' then top = c.s; tied = redis.call('ZCOUNT', c.key, c.s, c.s) end
  local got = redis.call('ZREVRANGEBYSCORE', c.key, top, '-inf', 'WITHSCORES', 'LIMIT', 0, batch + tied)
  c.buf, c.pos = {}, 1
  local at = tonumber(c.s)
  for i = 1, #got, 2 do
    if not (at and tonumber(got[i + 1]) == at and got[i] >= c.id) then
      c.buf[#c.buf + 1] = {got[i], got[i + 1]}
    end
  end
  c.done = #got / 2 < batch + tied
end

local cells = {}
for _, m in ipairs(machines) do
  for _, s in ipairs(statuses) do
    local c = {key = p .. 'l:' .. s .. ':' .. m, machine = m, status = s, s = cs, id = cid}
    refill(c)
    cells[#cells + 1] = c
  end
end

local out, count = {}, 0
while count <= limit do
  local best, head
  for _, c in ipairs(cells) do
    if c.pos > #c.buf and not c.done then refill(c) end
    local item = c.buf[c.pos]
    if item then
      if not head or tonumber(item[2]) > tonumber(head[2])
          or (tonumber(item[2]) == tonumber(head[2]) and item[1] > head[1]) then
        best, head = c, item
      end
    end
  end
  if not best then break end
  best.pos = best.pos + 1
  best.s, best.id = head[2], head[1]
  out[#out + 1] = head[1]; out[#out + 1] = head[2]; out[#out + 1] = best.machine; out[#out + 1] = best.status
  count = count + 1
end
return out
