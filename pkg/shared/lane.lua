-- One lane's shared admission state; every operation is one atomic call of this script, on Redis's
-- clock (TIME), so the clocks of the processes sharing the lane never matter. Times are ms since the
-- epoch of that clock. See doc.go for the algorithm (the same as pkg/ratelimit's, minus refunds).
--
-- KEYS[1] lane hash (limits, learned limits, pacing, day counters, pause, breaker, AIMD)
-- KEYS[2] window zset: entry member -> entry time (ms); KEYS[3] window counts: r<member>, t<member>
-- KEYS[4] processes zset: process id -> last seen (ms)
-- ARGV[1] op, ARGV[2] process id, ARGV[3..6] configured rpm tpm rpd tpd,
-- ARGV[7..16] observation (has_req lim_req rem_req reset_req_ms per_day has_tok lim_tok rem_tok
-- reset_tok_ms age_ms; has_req = -1 when there is none), ARGV[17..] the op's arguments.
local SPAN = 61000      -- the enforced window: the provider's 60 s plus 1 s for jitter
local WIN = 60000
local Q = 60            -- admissions within one 60 ms quantum share a window entry
local DAY = 86400000
local TTL = 172800000   -- state outlives a day period, then expires
local PROC_TTL = 15000  -- a process not seen for this long no longer counts

local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local L, W, WC, P = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local op = ARGV[1]

local F = {'cfg_rpm', 'cfg_tpm', 'cfg_rpd', 'cfg_tpd', 'l_rpm', 'l_tpm', 'l_rpd', 's_rpm', 's_tpm', 's_rpd',
  'wr', 'wt', 'last', 'rpm_tat', 'tpm_tat', 'day_end', 'day_reqs', 'day_tok', 'day_ex', 'pause', 'n429',
  'consec', 'rpmf', 'rec_to', 'last_dec', 'cap', 'brk_until'}
local raw = redis.call('HMGET', L, unpack(F))
local s = {}
for i, f in ipairs(F) do s[f] = tonumber(raw[i]) or 0 end
local dirty = {}
local function set(f, v) s[f] = v; dirty[f] = true end

local function eff(k)
  if k == 'rpm' and s.s_rpm == 3 then return s.rpmf end
  local l = s['l_' .. k]
  if l and l > 0 then return l end
  return s['cfg_' .. k]
end

-- configured limits: the caller's (the last writer's when processes disagree)
local cfg = {'cfg_rpm', 'cfg_tpm', 'cfg_rpd', 'cfg_tpd'}
for i, f in ipairs(cfg) do
  local v = tonumber(ARGV[2 + i]) or 0
  if v ~= s[f] then set(f, v) end
end

-- the day period keeps its phase: it does not restart when someone happens to look
if s.day_end == 0 then set('day_end', now + DAY) end
if now >= s.day_end then
  set('day_end', s.day_end + DAY * (math.floor((now - s.day_end) / DAY) + 1))
  set('day_reqs', 0); set('day_tok', 0); set('day_ex', 0)
end

local function entry_add(member, at, reqs, toks)
  redis.call('ZADD', W, at, member)
  if reqs ~= 0 then redis.call('HINCRBY', WC, 'r' .. member, reqs) end
  if toks ~= 0 then redis.call('HINCRBY', WC, 't' .. member, toks) end
  set('wr', s.wr + reqs); set('wt', s.wt + toks)
end

-- prune the entries that left the window for good
local old = redis.call('ZRANGEBYSCORE', W, '-inf', now - SPAN)
if #old > 0 then
  local fields = {}
  for _, m in ipairs(old) do fields[#fields + 1] = 'r' .. m; fields[#fields + 1] = 't' .. m end
  local c = redis.call('HMGET', WC, unpack(fields))
  local rs, ts = 0, 0
  for i = 1, #c, 2 do rs = rs + (tonumber(c[i]) or 0); ts = ts + (tonumber(c[i + 1]) or 0) end
  redis.call('HDEL', WC, unpack(fields))
  redis.call('ZREMRANGEBYSCORE', W, '-inf', now - SPAN)
  set('wr', math.max(s.wr - rs, 0)); set('wt', math.max(s.wt - ts, 0))
end

-- the observation carried by this call (response headers), learned before anything else
local o = {}
local ok = {'has_req', 'lim_req', 'rem_req', 'reset_req', 'per_day', 'has_tok', 'lim_tok', 'rem_tok', 'reset_tok', 'age'}
for i, f in ipairs(ok) do o[f] = tonumber(ARGV[6 + i]) or 0 end
local obs = now - math.max(o.age, 0)

local function phantom(reset, reqs, toks)
  if reset <= 0 or reset > WIN then reset = WIN end
  local e = obs + reset - SPAN -- leaves the window when the provider said its budget is back
  if e + SPAN <= now then return end
  entry_add('p' .. math.ceil(e / Q), e, reqs, toks)
end

local function observe()
  if o.has_req == 1 and o.lim_req > 0 then
    local used = math.max(o.lim_req - o.rem_req, 0)
    if o.per_day == 1 then
      if s.l_rpd ~= o.lim_req or s.s_rpd ~= 2 then set('l_rpd', o.lim_req); set('s_rpd', 2) end
      if o.reset_req > 0 and obs + o.reset_req > now then set('day_end', obs + o.reset_req) end
      if used > s.day_reqs then set('day_reqs', used) end
    else
      if s.l_rpm ~= o.lim_req or s.s_rpm ~= 2 then set('l_rpm', o.lim_req); set('s_rpm', 2) end
      -- usage the window does not hold: other clients of the key, or a Redis that restarted empty
      if used > s.wr then phantom(o.reset_req, used - s.wr, 0) end
    end
  end
  if o.has_tok == 1 and o.lim_tok > 0 then
    if s.l_tpm ~= o.lim_tok or s.s_tpm ~= 2 then set('l_tpm', o.lim_tok); set('s_tpm', 2) end
    local used = math.max(o.lim_tok - o.rem_tok, 0)
    if used > s.wt then phantom(o.reset_tok, 0, used - s.wt) end
  end
end
if o.has_req >= 0 then observe() end

local function burst(limit) return math.max(1, math.ceil(limit / 60)) end

-- earliest time at or after at when a token bucket (GCRA: tat is when it is full again) holds n,
-- or is full when n is above the burst (the rest becomes debt)
local function ready(tat, at, n, limit)
  local T = SPAN / limit
  local t = tat - (burst(limit) - math.min(n, burst(limit))) * T
  if t > at then return math.ceil(t) end
  return at
end

-- earliest time at or after at when the window (at-SPAN, at] has room for 1 request of n tokens
local function winready(at, n, rpm, tpm)
  local r, tk = s.wr, s.wt
  local function fits() return (rpm <= 0 or r + 1 <= rpm) and (tpm <= 0 or tk + n <= tpm) end
  if fits() then return at end
  local off = 0
  while true do
    local ents = redis.call('ZRANGEBYSCORE', W, '-inf', '+inf', 'WITHSCORES', 'LIMIT', off, 64)
    if #ents == 0 then return at end
    local fields = {}
    for i = 1, #ents, 2 do fields[#fields + 1] = 'r' .. ents[i]; fields[#fields + 1] = 't' .. ents[i] end
    local c = redis.call('HMGET', WC, unpack(fields))
    for i = 1, #ents, 2 do
      local e = tonumber(ents[i + 1])
      if e > at - SPAN then
        if fits() then return at end
        at = math.max(at, math.ceil(e + SPAN))
      end
      r = r - (tonumber(c[i]) or 0); tk = tk - (tonumber(c[i + 1]) or 0)
    end
    off = off + 64
  end
end

local result = {0, 0, '', 0}
local function state()
  local src = {}
  for _, k in ipairs({'rpm', 'tpm', 'rpd', 'tpd'}) do
    local v = s['s_' .. k] or 0
    if v == 0 then if s['cfg_' .. k] > 0 then v = 1 end end
    src[#src + 1] = v
  end
  return {math.floor(eff('rpm')), eff('tpm'), eff('rpd'), eff('tpd'), src[1], src[2], src[3], src[4],
    s.wr, s.wt, s.day_reqs, s.day_tok, s.day_ex, math.max(s.pause - now, 0), s.n429,
    math.max(s.day_end - now, 0), math.max(s.brk_until - now, 0), math.max(s.last - now, 0)}
end

if op == 'admit' then
  local n = tonumber(ARGV[17])
  local rpm, tpm, rpd, tpd = eff('rpm'), eff('tpm'), eff('rpd'), eff('tpd')
  if (tpm > 0 and n > tpm) or (tpd > 0 and n > tpd) then
    result = {1, 0, '', 0}
  elseif s.day_ex == 1 or (rpd > 0 and s.day_reqs + 1 > rpd) or (tpd > 0 and s.day_tok + n > tpd) then
    result = {2, 0, '', 0}
  else
    local at = now
    if s.pause > at then at = s.pause end
    if s.last > at then at = s.last end -- first come, first served across processes
    if rpm > 0 then at = ready(s.rpm_tat, at, 1, rpm) end
    if tpm > 0 then at = ready(s.tpm_tat, at, n, tpm) end
    if rpm > 0 or tpm > 0 then at = winready(at, n, rpm, tpm) end
    if rpm > 0 then set('rpm_tat', math.max(s.rpm_tat, at) + SPAN / rpm) end
    if tpm > 0 then set('tpm_tat', math.max(s.tpm_tat, at) + n * SPAN / tpm) end
    -- the entry's time is the quantum's end, so it leaves the window no earlier than the admission
    local q = math.ceil(at / Q)
    entry_add(tostring(q), q * Q, 1, n)
    if at > s.last then set('last', at) end
    set('day_reqs', s.day_reqs + 1); set('day_tok', s.day_tok + n)
    result = {0, at - now, tostring(q), s.day_end}
  end
elseif op == 'settle' then
  local member, est, actual, dayend = ARGV[17], tonumber(ARGV[18]), tonumber(ARGV[19]), tonumber(ARGV[20])
  local extra = actual - est
  if extra > 0 then
    -- an under-estimate is charged as debt; an over-estimate is not refunded (providers count the
    -- admission estimate against their per-minute limit)
    if eff('tpm') > 0 then set('tpm_tat', s.tpm_tat + extra * SPAN / eff('tpm')) end
    if redis.call('ZSCORE', W, member) then
      redis.call('HINCRBY', WC, 't' .. member, extra); set('wt', s.wt + extra)
    end
    if dayend == s.day_end then set('day_tok', s.day_tok + extra) end
  end
  set('consec', 0)
  if s.s_rpm == 3 then
    -- AIMD increase: back quickly to the rate accepted before the last decrease, then slowly on
    local gap = s.rec_to - s.rpmf
    if gap > 0 then set('rpmf', s.rpmf + gap * math.min(3 / s.rpmf, 0.5)) end
    local v = s.rpmf + 0.02
    if s.cap > 0 and v > s.cap then v = s.cap end
    set('rpmf', v); set('l_rpm', math.floor(v))
  end
elseif op == 'limited' then
  local n, atq, retry = tonumber(ARGV[17]), tonumber(ARGV[18]), tonumber(ARGV[19])
  set('n429', s.n429 + 1); set('consec', s.consec + 1)
  local d = retry
  if d <= 0 then d = math.min(1000 * 2 ^ math.min(s.consec - 1, 16), 30000) end
  if obs + d > s.pause then set('pause', obs + d) end
  local explained = (o.has_req == 1 and o.lim_req > 0 and o.rem_req <= 0) or
    (o.has_tok == 1 and o.lim_tok > 0 and o.rem_tok < n)
  if not explained and atq * Q >= s.last_dec then
    -- AIMD decrease; the window's request count stands in for "accepted in the last minute"
    local cur = eff('rpm')
    if cur <= 0 then cur = s.wr end
    local accepted = s.wr
    local nxt = math.max(cur * 0.5, math.min(cur, accepted) * 0.95, 1)
    if s.s_rpm ~= 3 then set('cap', eff('rpm')) end
    set('rec_to', math.min(cur, accepted)); set('rpmf', nxt); set('last_dec', now)
    set('l_rpm', math.floor(nxt)); set('s_rpm', 3)
  end
elseif op == 'cancel' then
  local member, n, dayend = ARGV[17], tonumber(ARGV[18]), tonumber(ARGV[19])
  if redis.call('ZSCORE', W, member) then
    local r = redis.call('HINCRBY', WC, 'r' .. member, -1)
    local t = redis.call('HINCRBY', WC, 't' .. member, -n)
    set('wr', math.max(s.wr - 1, 0)); set('wt', math.max(s.wt - n, 0))
    if r <= 0 and t <= 0 then
      redis.call('ZREM', W, member); redis.call('HDEL', WC, 'r' .. member, 't' .. member)
    end
  end
  if eff('rpm') > 0 then set('rpm_tat', math.max(s.rpm_tat - SPAN / eff('rpm'), 0)) end
  if eff('tpm') > 0 then set('tpm_tat', math.max(s.tpm_tat - n * SPAN / eff('tpm'), 0)) end
  if dayend == s.day_end then
    set('day_reqs', math.max(s.day_reqs - 1, 0)); set('day_tok', math.max(s.day_tok - n, 0))
  end
elseif op == 'pause' then
  local d = tonumber(ARGV[17])
  if now + d > s.pause then set('pause', now + d) end
elseif op == 'exhaust' then
  local d = tonumber(ARGV[17])
  if d > 0 then set('day_end', now + d) end
  set('day_ex', 1)
elseif op == 'breaker' then
  local d = tonumber(ARGV[17])
  if d > 0 then set('brk_until', now + d) else set('brk_until', 0) end
elseif op == 'seed' then
  -- a process rejoining after an outage adds what it admitted locally meanwhile
  local reqs, toks, dreqs, dtoks = tonumber(ARGV[17]), tonumber(ARGV[18]), tonumber(ARGV[19]), tonumber(ARGV[20])
  if reqs > 0 or toks > 0 then
    local q = math.ceil(now / Q)
    entry_add(tostring(q), q * Q, reqs, toks)
  end
  set('day_reqs', s.day_reqs + dreqs); set('day_tok', s.day_tok + dtoks)
  -- limits learned before the outage, for a server that restarted without them
  for i, k in ipairs({'rpm', 'tpm', 'rpd'}) do
    local v, src = tonumber(ARGV[20 + i]) or 0, tonumber(ARGV[23 + i]) or 0
    if v > 0 and s['s_' .. k] == 0 then
      set('l_' .. k, v); set('s_' .. k, src)
      if k == 'rpm' and src == 3 then set('rpmf', v); set('rec_to', v); set('cap', s.cfg_rpm) end
    end
  end
end

-- this process was seen now; processes not seen for PROC_TTL are forgotten. Only the heartbeat
-- (every 5 s) and a rejoin record it and refresh the keys' expiry, to keep the hot path short.
local procs = 0
if op == 'beat' or op == 'seed' then
  redis.call('ZADD', P, now, ARGV[2])
  redis.call('ZREMRANGEBYSCORE', P, '-inf', now - PROC_TTL)
  procs = redis.call('ZCARD', P)
end

local kv = {}
for f in pairs(dirty) do
  local v = s[f]
  kv[#kv + 1] = f
  if v == math.floor(v) then kv[#kv + 1] = string.format('%d', v) else kv[#kv + 1] = string.format('%.3f', v) end
end
if #kv > 0 then redis.call('HSET', L, unpack(kv)) end
if op == 'beat' or op == 'seed' then
  for _, k in ipairs({L, W, WC, P}) do redis.call('PEXPIRE', k, TTL) end
end

local st = state()
local out = {result[1], math.floor(result[2]), result[3], math.floor(result[4]), procs, now}
for _, v in ipairs(st) do out[#out + 1] = math.floor(v) end
return out
