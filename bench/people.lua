-- wrk script: a mix of people lists and searches across organisations.
-- Environment: SHROOMS_TOKEN (bearer), SHROOMS_ORGS (space-separated slugs).
local token = os.getenv("SHROOMS_TOKEN")
local orgs = {}
for s in string.gmatch(os.getenv("SHROOMS_ORGS") or "", "%S+") do orgs[#orgs + 1] = s end
local terms = {"mar", "dub", "lea", "hugo", "ndiaye", "example.net", "+33 6 1", "tho", "zo", "camille martin"}
local mode = os.getenv("SHROOMS_MODE") or "mixed" -- mixed | list | search
local think = tonumber(os.getenv("SHROOMS_THINK_MS") or "0")
local n = 0

-- Think time between a client's requests (0: as fast as possible).
delay = function()
  return think
end
request = function()
  n = n + 1
  local org = orgs[(n % #orgs) + 1]
  local path
  if mode == "list" or (mode == "mixed" and n % 2 == 0) then
    path = "/api/v1/orgs/" .. org .. "/people?limit=50"
  else
    local q = terms[(n % #terms) + 1]:gsub(" ", "%%20")
    path = "/api/v1/orgs/" .. org .. "/people?limit=50&q=" .. q
  end
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. token})
end
