-- KEYS: one key.  ARGV: expected text, new text, seconds.  Replace the key's text with the new one
-- (for that many seconds) only while it still holds the expected text; 1 if replaced, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
  return 1
end
return 0
