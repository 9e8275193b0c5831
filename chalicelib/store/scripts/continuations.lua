-- Functions the commit and branch scripts start with: what a commit does to continuations and pending calls.

-- The claimed continuation is used: redeemed with the answer, or closed for ``head.outcome``.
local function use_claimed(key, head)
  if head.outcome == 'redeemed' then
    redis.call('HSET', key, 'status', 'redeemed', 'answeredAt', head.now, 'answer', head.answer,
               'about', head.about, 'digest', head.digest)
  else
    redis.call('HSET', key, 'status', 'closed', 'reason', head.outcome, 'about', head.about)
  end
  redis.call('HDEL', key, 'claim', 'lease')
end

-- A new continuation from its JSON fields (``ttl``: how long to keep it).
local function create_continuation(key, text)
  local rec = cjson.decode(text)
  for name, value in pairs(rec) do
    if name ~= 'ttl' then redis.call('HSET', key, name, value) end
  end
  redis.call('EXPIRE', key, rec.ttl)
end

-- A continuation that no longer waits (its branch ended, the execution moved on) is closed.
local function close_continuation(key, reason, about)
  local status = redis.call('HGET', key, 'status')
  if status == 'open' or status == 'claimed' then
    redis.call('HSET', key, 'status', 'closed', 'reason', reason, 'about', about)
    redis.call('HDEL', key, 'claim', 'lease')
  end
end

-- Keep a key at least ``ttl`` seconds, if it exists (never shorten its TTL).
local function keep_at_least(key, ttl)
  local current = redis.call('TTL', key)
  if current == -1 or (current >= 0 and current < ttl) then redis.call('EXPIRE', key, ttl) end
end

-- Apply the continuation part of a commit: the claimed one (KEYS[k], if head.claim), then head.created
-- new ones and head.closed closed ones, then head.calls pending calls into the outbox. ARGV from ``a``:
-- created (JSON)..., closed (reason, about)..., calls (field, value).... The outbox is kept ``ttl``
-- seconds (at least that, when ``at_least``). Returns the next KEYS and ARGV indexes.
local function apply_continuations(head, k, a, ttl, at_least)
  if head.claim then
    use_claimed(KEYS[k], head); k = k + 1
  end
  for n = 1, head.created do
    create_continuation(KEYS[k], ARGV[a]); a = a + 1; k = k + 1
  end
  for n = 1, head.closed do
    close_continuation(KEYS[k], ARGV[a], ARGV[a + 1]); a = a + 2; k = k + 1
  end
  if head.calls > 0 then
    for n = 1, head.calls do
      redis.call('HSET', KEYS[k], ARGV[a], ARGV[a + 1]); a = a + 2
    end
    if at_least then keep_at_least(KEYS[k], ttl) else redis.call('EXPIRE', KEYS[k], ttl) end
    k = k + 1
  end
  return k, a
end
