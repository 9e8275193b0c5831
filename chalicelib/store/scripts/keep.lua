-- KEYS: one key.  ARGV: seconds, text.  Keep the key for at least that long (never shorten its
-- TTL); store ``text`` if the key is missing (return 0 if it is missing and no text is given).
local ttl = tonumber(ARGV[1])
local current = redis.call('TTL', KEYS[1])
if current == -2 then
  if ARGV[2] == '' then return 0 end
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ttl)
elseif current == -1 or current < ttl then
  redis.call('EXPIRE', KEYS[1], ttl)
end
return 1
