-- A job's shared --max-cost budget, in nano-USD integers (no float residue). One atomic call per
-- reserve or settle. KEYS[1] the job's budget hash: cap, spent, r:<process> (reserved by requests in
-- flight), n:<process> (their count). ARGV: op, process id, cap, estimate, actual.
-- Reservations of processes whose heartbeat key (llmbatch:proc:<id>) expired are dropped: a process
-- that died cannot settle them. (The heartbeat keys are read by name, so the budget needs a
-- single-node Redis, not a cluster.)
local K = KEYS[1]
local op, me = ARGV[1], ARGV[2]
local cap, est, actual = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local TTL = 604800000

local spent = tonumber(redis.call('HGET', K, 'spent')) or 0
local out
if op == 'reserve' then
  local h = redis.call('HGETALL', K)
  local reserved, holders = 0, 0
  for i = 1, #h, 2 do
    local f, p = string.sub(h[i], 1, 2), string.sub(h[i], 3)
    if f == 'r:' or f == 'n:' then
      if p == me or redis.call('EXISTS', 'llmbatch:proc:' .. p) == 1 then
        if f == 'r:' then reserved = reserved + tonumber(h[i + 1]) else holders = holders + tonumber(h[i + 1]) end
      else
        redis.call('HDEL', K, h[i])
      end
    end
  end
  redis.call('HSET', K, 'cap', cap)
  if spent + est > cap then
    out = {1, spent, reserved}      -- the cap is reached
  elseif holders == 0 or spent + reserved + est <= cap then
    redis.call('HINCRBY', K, 'r:' .. me, est)
    redis.call('HINCRBY', K, 'n:' .. me, 1)
    out = {0, spent, reserved + est}
  else
    out = {2, spent, reserved}      -- wait: requests in flight may settle for less
  end
elseif op == 'settle' then
  spent = redis.call('HINCRBY', K, 'spent', actual)
  if est >= 0 then
    local n = redis.call('HINCRBY', K, 'n:' .. me, -1)
    local r = redis.call('HINCRBY', K, 'r:' .. me, -est)
    if n <= 0 or r < 0 then redis.call('HDEL', K, 'r:' .. me, 'n:' .. me) end
  end
  out = {0, spent, 0}
else
  out = {0, spent, 0}
end
redis.call('PEXPIRE', K, TTL)
return out
