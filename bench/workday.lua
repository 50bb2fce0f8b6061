-- wrk script: a working day in the people directory, reads and writes mixed.
-- Out of every 100 requests of a client: 30 lists with a filter or a sort,
-- 15 dashboards, 10 "who am I", 20 people added, 15 edits of a person this
-- client added, 8 CSV exports of a search, 2 sign-ins with a password.
-- Environment: SHROOMS_TOKEN (bearer), SHROOMS_ORGS (space-separated slugs),
-- SHROOMS_EMAIL / SHROOMS_PASSWORD (for the sign-ins), SHROOMS_THINK_MS.
local token = os.getenv("SHROOMS_TOKEN")
local email = os.getenv("SHROOMS_EMAIL") or "demo@example.org"
local password = os.getenv("SHROOMS_PASSWORD") or "demo-password"
local think = tonumber(os.getenv("SHROOMS_THINK_MS") or "100")
local orgs = {}
for s in string.gmatch(os.getenv("SHROOMS_ORGS") or "", "%S+") do orgs[#orgs + 1] = s end
local filters = {"sort=newest", "q=mar", "q=dub&sort=oldest", "q=lea", "sort=name", "q=+33 6 1"}
local threads = {}

setup = function(thread)
  thread:set("id", #threads + 1)
  threads[#threads + 1] = thread
end

local n, created, errors, tid = 0, {}, 0, 0
local auth = {["Authorization"] = "Bearer " .. (token or ""), ["Content-Type"] = "application/json"}

init = function()
  tid = id or 0
  n = tid * 7919 -- threads start at different points of the mix
end

delay = function()
  return think
end

request = function()
  n = n + 1
  local org = orgs[(n % #orgs) + 1]
  local base = "/api/v1/orgs/" .. org
  local k = n % 100
  if k < 30 then
    local f = filters[(n % #filters) + 1]:gsub(" ", "%%20")
    return wrk.format("GET", base .. "/people?limit=50&" .. f, auth)
  elseif k < 45 then
    return wrk.format("GET", base .. "/dashboard", auth)
  elseif k < 55 then
    return wrk.format("GET", "/api/v1/me", auth)
  elseif k < 75 or #created == 0 then
    -- Each thread writes into one organisation, so its edits know where.
    base = "/api/v1/orgs/" .. orgs[(tid % #orgs) + 1]
    local body = string.format('{"given_name":"Bench%d","family_name":"Workday%d","email":"b%d-%d@example.net"}', tid, n, tid, n)
    return wrk.format("POST", base .. "/people", auth, body)
  elseif k < 90 then
    local p = created[(n % #created) + 1]
    return wrk.format("PATCH", "/api/v1/orgs/" .. orgs[(tid % #orgs) + 1] .. "/people/" .. p, auth, string.format('{"phone":"+33 6 12 %02d %02d %02d"}', n % 100, tid % 100, k))
  elseif k < 98 then
    return wrk.format("GET", base .. "/people/export.csv?q=mar", auth)
  else
    local body = string.format('{"email":"%s","password":"%s"}', email, password)
    return wrk.format("POST", "/api/v1/auth/token", {["Content-Type"] = "application/json"}, body)
  end
end

response = function(status, headers, body)
  if status >= 400 then
    errors = errors + 1
  elseif status == 201 and #created < 200 then
    local id = string.match(body, '"id":"([0-9a-f%-]+)"')
    if id then created[#created + 1] = id end
  end
end

done = function(summary, latency, requests)
  local errs = 0
  for _, t in ipairs(threads) do errs = errs + (t:get("errors") or 0) end
  io.write(string.format("requests: %d in %.1f s, %.1f req/s\n", summary.requests, summary.duration / 1e6,
    summary.requests / (summary.duration / 1e6)))
  io.write(string.format("latency: p50 %.2f ms, p95 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("errors: %d answers >= 400, %d connect, %d read, %d write, %d timeouts\n", errs,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
end
