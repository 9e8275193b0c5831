-- One point of an execution read in one step (see ``Store.read_point``); starts with unit.lua.
-- KEYS: the point's continuation (read by its ID) or, when ARGV names the point, the execution.
-- ARGV: the execution's key prefix ("asl:{t}:"), the execution ID and the point ('' and '': the
--       continuation's), event IDs and point IDs to reserve for a run of the point's branch (0: none).
-- Returns {the continuation's fields (flat; none when read by point), execution, point, how, ...}:
--   'missing'                          there is no such continuation
--   'branch', <read_unit's reply>      the point is in a branch stored apart: that branch alone is read
--   'apart'                            branches are stored apart and the point is in none of them, so it
--                                      waits no more (once the branches' hash says that every waiting
--                                      point is indexed, ``pt``; a continuation's point always is)
--   'whole', record or false, the branches' fields, their history chunks, their marks (as load.lua)
local fields, exec, point = {}, ARGV[2], ARGV[3]
if exec == '' then
  fields = redis.call('HGETALL', KEYS[1])
  if #fields == 0 then return {fields, '', '', 'missing'} end
  for i = 1, #fields, 2 do
    if fields[i] == 'exec' then exec = fields[i + 1] elseif fields[i] == 'point' then point = fields[i + 1] end
  end
end
local prefix = ARGV[1]
local x, split = prefix .. 'x:' .. exec, prefix .. 'f:' .. exec
if redis.call('EXISTS', split) == 1 and redis.call('EXISTS', x) == 1 then
  local unit = read_unit(split, point, ARGV[4], ARGV[5])
  if unit then return {fields, exec, point, 'branch', unpack(unit)} end
  if ARGV[2] == '' or redis.call('HEXISTS', split, 'pt') == 1 then return {fields, exec, point, 'apart'} end
end
return {fields, exec, point, 'whole', redis.call('GET', x), redis.call('HGETALL', split),
        redis.call('LRANGE', prefix .. 'e:' .. exec, 0, -1), redis.call('HGETALL', prefix .. 'k:' .. exec)}
