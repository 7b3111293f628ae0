package redislimit

import "github.com/redis/go-redis/v9"

// The script makes one decision atomically: it reads every counter of a
// key, charges all of them or none, and answers with the state of each.
//
//	KEYS[i]   the counter of limit i
//	ARGV[1]   op: "take", "give" or "status"
//	ARGV[2]   cost
//	ARGV[3]   now in µs since the epoch, or "" for the server's TIME (tests only)
//	ARGV[3+8(i-1)+1..8]  limit i:
//	          rate:  "r", interval (µs, ns below the µs), tolerance (µs, ns), burst,
//	                 tokens to give back first, tokens to take (0: none; else at
//	                 least cost, at most as many as fit)
//	          quota: "q", period start (µs), period end (µs, 0: none), count
//
// Times are µs and ns-below-the-µs pairs, so that every number stays an
// exact integer in Lua's doubles (below 2^53): a ten-year tolerance in ns
// does not fit one double exactly, a µs count does. The answer is
//
//	{1 or 0 (charged or not) or -1 (now is outside a quota's period), now (µs),
//	 then per limit: a rate's TAT (µs, ns) and the tokens taken; a quota's used, 0, 0}
//
// A rate's counter is "r:<tat µs>:<ns>", set to expire once its bucket is
// whole (deleted when it already is); a quota's "q:<period start>:<used>",
// expiring a minute after its period ends (never for credits without one).
const scriptSource = `
if redis.replicate_commands then redis.replicate_commands() end
local op = ARGV[1]
local c = tonumber(ARGV[2])
local now
if ARGV[3] ~= '' then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function fmt(x) return string.format('%.0f', x) end
local function mul(g, tu, tr)
  local x = g * tr
  local q = math.floor(x / 1000)
  return g * tu + q, x - q * 1000
end
local function add(au, ar, bu, br)
  local r = ar + br
  if r >= 1000 then return au + bu + 1, r - 1000 end
  return au + bu, r
end
local function sub(au, ar, bu, br)
  local r = ar - br
  if r < 0 then return au - bu - 1, r + 1000 end
  return au - bu, r
end
local function le(au, ar, bu, br) return au < bu or (au == bu and ar <= br) end

local n = #KEYS
local st = {}
local ok = true
for i = 1, n do
  local b = 3 + (i - 1) * 8
  local v = redis.call('GET', KEYS[i])
  local s = {kind = ARGV[b + 1], dirty = false, g = 0}
  if s.kind == 'r' then
    local tu, tr = tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
    local lu, lr = tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5])
    local burst = tonumber(ARGV[b + 6])
    local ret, want = tonumber(ARGV[b + 7]), tonumber(ARGV[b + 8])
    local au, ar = now, 0
    if v then
      local x, y = string.match(v, '^r:(%d+):(%d+)$')
      if x then au, ar = tonumber(x), tonumber(y) end
    end
    if op == 'give' then ret, want = c, 0 end
    if op == 'status' then ret, want = 0, 0 end
    if ret > 0 then
      local mu, mr = mul(math.min(ret, burst), tu, tr)
      au, ar = sub(au, ar, mu, mr)
      s.dirty = true
    end
    if au < now then au, ar = now, 0 end
    if want > 0 then
      local function fits(g)
        local mu, mr = mul(g, tu, tr)
        local xu, xr = add(au, ar, mu, mr)
        return le(xu, xr, now + lu, lr)
      end
      if c > burst or not fits(c) then
        ok = false
      else
        local g = c
        want = math.min(want, burst)
        if want > c then
          local room = ((now + lu - au) * 1000 + (lr - ar)) / (tu * 1000 + tr)
          g = math.max(c, math.min(want, math.floor(room)))
          while g > c and not fits(g) do g = g - 1 end
          while g < want and fits(g + 1) do g = g + 1 end
        end
        s.g = g
        s.tu, s.tr = tu, tr
      end
    end
    s.au, s.ar = au, ar
  else
    local start, stop, count = ARGV[b + 2], tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
    if stop > 0 and (now < tonumber(start) or now >= stop) then return {-1, now} end
    local used = 0
    if v then
      local x, y = string.match(v, '^q:(%d+):(%d+)$')
      if x == start then used = tonumber(y) end
    end
    if op == 'take' and used + c > count then ok = false end
    if op == 'give' and used > 0 then
      used = math.max(used - c, 0)
      s.dirty = true
    end
    s.used, s.start, s.stop = used, start, stop
  end
  st[i] = s
end

local out = {1, now}
if not ok then out[1] = 0 end
for i = 1, n do
  local s = st[i]
  if s.kind == 'r' then
    if op == 'take' and ok and s.g > 0 then
      local mu, mr = mul(s.g, s.tu, s.tr)
      s.au, s.ar = add(s.au, s.ar, mu, mr)
      s.dirty = true
    else
      s.g = 0
    end
    if s.dirty then
      if s.au <= now and s.ar == 0 then
        redis.call('DEL', KEYS[i])
      else
        redis.call('SET', KEYS[i], 'r:' .. fmt(s.au) .. ':' .. fmt(s.ar), 'PX', fmt(math.floor((s.au - now) / 1000) + 1))
      end
    end
    out[#out + 1] = s.au
    out[#out + 1] = s.ar
    out[#out + 1] = s.g
  else
    if op == 'take' and ok then
      s.used = s.used + c
      s.dirty = true
    end
    if s.dirty then
      if s.used <= 0 then
        redis.call('DEL', KEYS[i])
      elseif s.stop > 0 then
        redis.call('SET', KEYS[i], 'q:' .. s.start .. ':' .. fmt(s.used), 'PX', fmt(math.floor((s.stop - now) / 1000) + 60000))
      else
        redis.call('SET', KEYS[i], 'q:' .. s.start .. ':' .. fmt(s.used))
      end
    end
    out[#out + 1] = s.used
    out[#out + 1] = 0
    out[#out + 1] = 0
  end
end
return out
`

var script = redis.NewScript(scriptSource)
