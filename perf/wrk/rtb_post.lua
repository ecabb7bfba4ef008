-- perf/wrk/rtb_post.lua — wrk posts a rotating set of OpenRTB bid requests to /openrtb2/bid.
--   wrk -s perf/wrk/rtb_post.lua http://HOST:PORT -- DIR [NAMES...]
-- DIR holds NAME.json files (default names: apps/rtb/testdata's banner, video, native, app,
-- multi_imp); each connection's requests go round them in order. Requests are formatted once.
local reqs = {}
local n = 0
local i = 0

function init(args)
  local dir = args[1] or "apps/rtb/testdata/"
  local names = {}
  for k = 2, #args do names[#names + 1] = args[k] end
  if #names == 0 then names = {"banner", "video", "native", "app", "multi_imp"} end
  local headers = {["Content-Type"] = "application/json", ["x-openrtb-version"] = "2.6"}
  for _, name in ipairs(names) do
    local f = assert(io.open(dir .. name .. ".json", "rb"))
    local body = f:read("*a")
    f:close()
    n = n + 1
    reqs[n] = wrk.format("POST", "/openrtb2/bid", headers, body)
  end
end

function request()
  i = i % n + 1
  return reqs[i]
end
