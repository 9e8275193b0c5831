-- A function the claim and point scripts start with: the branch stored apart that a point is in.

-- The unit of ``split`` (the branches' hash) that ``point`` is in, with what a run of it needs besides
-- it: {its path, meta, the unit, units open in its group, events, points, transitions, the next
-- iteration its group's Map starts in a commit of one of its units (``q``) and that one's input (both
-- false when its commits start none), then the ``a`` of each unit it is inside, outermost first}. ``events`` and ``points`` IDs are reserved for the run
-- first (0: none; the counters are read as they are); nil when the point is in no unit stored apart.
local function read_unit(split, point, events, points)
  local at = redis.call('HGET', split, 'p' .. point)
  if not at then return nil end
  -- "3.17.2": the units it is inside are "3" and "3.17"; its group's counter is n3.17
  local fields, parent, from = {'m', 'b' .. at, '', 'tr', 'ev', 'sq', ''}, '', 1
  while true do
    local dot = string.find(at, '.', from, true)
    if not dot then break end
    parent = string.sub(at, 1, dot - 1)
    fields[#fields + 1] = 'a' .. parent
    from = dot + 1
  end
  fields[3], fields[7] = 'n' .. parent, 'q' .. parent
  local got = redis.call('HMGET', split, unpack(fields))
  if not got[2] then return nil end
  local ev, sq = got[5], got[6]
  if tonumber(events) > 0 then ev = tostring(redis.call('HINCRBY', split, 'ev', events)) end
  if tonumber(points) > 0 then sq = tostring(redis.call('HINCRBY', split, 'sq', points)) end
  local following = false
  if got[7] then following = redis.call('HGET', split, 'i' .. (parent == '' and got[7] or parent .. '.' .. got[7])) end
  local unit = {at, got[1], got[2], got[3], ev, sq, got[4], got[7] or false, following}
  for n = 8, #fields do unit[#unit + 1] = got[n] end
  return unit
end
