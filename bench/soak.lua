-- wrk script of the soak test (bench/soak.py, issue 7): one traffic class per wrk process.
--
--   wrk -t1 -c2 -d10s -s bench/soak.lua http://127.0.0.1:PORT/ -- CLASS DELAY_MS OFFSET DATA_DIR
--
-- CLASS is one of jwt, apikey, post, unauth, limited, waf (what each sends is below). DELAY_MS is
-- the pause of each connection between two requests, so the rate is bounded (wrk alone would
-- saturate the machine). OFFSET continues the client-key cycles of the previous run of the same
-- class, so that successive 10 s runs walk through the whole pool of keys. DATA_DIR holds the
-- files written by `soak.py prepare`: tokens.txt (valid JWTs), apikeys.txt (valid API keys),
-- bad.txt (credentials that must be refused), attacks.txt (requests the WAF must block).
--
-- At the end, one line "SOAKJSON {...}": status counts, socket errors and the latency quantile
-- function (microseconds at a grid of percentiles), which soak.py merges across classes.

local class, delay_ms, n = "jwt", 10, 0
local tokens, apikeys, bad, attacks = {}, {}, {}, {}
counts = {} -- global: done() reads it with thread:get
local threads = {}

-- Clients behind the trusted proxy (127.0.0.1). Valid classes use 256 addresses; the limited
-- class cycles through 49,152 "cold" addresses (3 of every 4 of 10.77.0.0/16: one request each
-- per cycle, so the local limiter table grows to that size and stays there) and 4 "hot" ones
-- that exceed 5/s.
local function valid_ip(i) return "198.18." .. (i % 4) .. "." .. (i % 256) end
local function cold_ip(i) return "10.77." .. (math.floor(i / 256) % 256) .. "." .. (i % 256) end
local function hot_ip(i) return "203.0.113." .. (1 + i % 4) end

local function lines(path)
  local t = {}
  local f = io.open(path, "r")
  if not f then return t end
  for l in f:lines() do if l ~= "" then t[#t + 1] = l end end
  f:close()
  return t
end

function setup(thread) threads[#threads + 1] = thread end

function init(args)
  class = args[1] or class
  delay_ms = tonumber(args[2] or "10")
  n = tonumber(args[3] or "0")
  local dir = args[4] or "."
  tokens = lines(dir .. "/tokens.txt")
  apikeys = lines(dir .. "/apikeys.txt")
  bad = lines(dir .. "/bad.txt")
  attacks = lines(dir .. "/attacks.txt")
end

function delay() return delay_ms end

local bodies = {
  '{"item":"sku-%d","quantity":%d,"note":"leave it at the back door"}',
  '{"customer":{"id":%d,"tier":"gold"},"lines":[{"sku":"a-1","qty":%d},{"sku":"b-2","qty":1}]}',
  '{"query":"blue running shoes size %d","page":%d,"filters":{"in_stock":true}}',
}

local function bearer(i) return "Bearer " .. tokens[(i % #tokens) + 1] end

function request()
  n = n + 1
  if class == "jwt" then
    return wrk.format("GET", "/api/items/" .. (n % 5000) .. "?page=" .. (n % 7),
      { ["Authorization"] = bearer(n), ["X-Forwarded-For"] = valid_ip(n) })
  elseif class == "apikey" then
    return wrk.format("GET", "/api/orders?limit=" .. (n % 50),
      { ["X-API-Key"] = apikeys[(n % #apikeys) + 1], ["X-Forwarded-For"] = valid_ip(n) })
  elseif class == "post" then
    local body = string.format(bodies[(n % #bodies) + 1], n % 100000, 1 + n % 9)
    return wrk.format("POST", "/api/orders", { ["Authorization"] = bearer(n),
      ["Content-Type"] = "application/json", ["X-Forwarded-For"] = valid_ip(n) }, body)
  elseif class == "unauth" then
    -- bad.txt lines: "-" (no credential), "bearer <token>" or "apikey <key>"
    local b = bad[(n % #bad) + 1]
    local h = { ["X-Forwarded-For"] = valid_ip(n) }
    if b:sub(1, 7) == "bearer " then h["Authorization"] = "Bearer " .. b:sub(8)
    elseif b:sub(1, 7) == "apikey " then h["X-API-Key"] = b:sub(8) end
    return wrk.format("GET", "/api/items/" .. (n % 100), h)
  elseif class == "limited" then
    -- Every other request from a hot client (client_ip limit) or the hot tenant (shared limit
    -- in Redis); the rest from cold clients and 8,192 tenants, mostly admitted.
    local ip, tenant
    if n % 2 == 0 then
      ip = hot_ip(n / 2); tenant = "t-" .. (n % 8192)
      if n % 4 == 0 then ip = cold_ip(n); tenant = "hot" end
    else
      ip = cold_ip(n); tenant = "t-" .. (n % 8192)
    end
    return wrk.format("GET", "/limited/report?id=" .. n,
      { ["X-Forwarded-For"] = ip, ["X-Tenant"] = tenant })
  elseif class == "waf" then
    -- attacks.txt lines: "GET <path?query>" or "POST <path> <json body>", sent with a valid token
    -- so that body attacks get past authentication to the body inspection.
    local a = attacks[(n % #attacks) + 1]
    local h = { ["Authorization"] = bearer(n), ["X-Forwarded-For"] = valid_ip(n) }
    if a:sub(1, 5) == "POST " then
      local rest = a:sub(6)
      local sp = rest:find(" ", 1, true)
      h["Content-Type"] = "application/json"
      return wrk.format("POST", rest:sub(1, sp - 1), h, rest:sub(sp + 1))
    end
    return wrk.format("GET", a:sub(5), h)
  end
  return wrk.format("GET", "/")
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

-- Percentile grid: dense in the tail, where a soak's regressions show.
local function grid()
  local g = {}
  for p = 1, 90 do g[#g + 1] = p end
  for i = 1, 90 do g[#g + 1] = 90 + i / 10 end
  for i = 1, 99 do g[#g + 1] = 99 + i / 100 end
  for i = 1, 9 do g[#g + 1] = 99.99 + i / 1000 end
  return g
end

function done(summary, latency, requests)
  local merged = {}
  for _, t in ipairs(threads) do
    local c = t:get("counts") or {}
    for k, v in pairs(c) do merged[k] = (merged[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(merged) do parts[#parts + 1] = string.format('"%d":%d', k, v) end
  local q = {}
  if summary.requests > 0 then
    for _, p in ipairs(grid()) do q[#q + 1] = string.format("[%g,%d]", p, latency:percentile(p)) end
    q[#q + 1] = string.format("[100,%d]", latency.max)
  end
  local e = summary.errors
  io.write(string.format(
    'SOAKJSON {"class":"%s","duration_us":%d,"requests":%d,"status":{%s},' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"quantiles":[%s]}\n',
    class, summary.duration, summary.requests, table.concat(parts, ","),
    e.connect, e.read, e.write, e.timeout, table.concat(q, ",")))
end
