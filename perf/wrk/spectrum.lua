-- perf/wrk/spectrum.lua — after the run, writes wrk's latency distribution as a percentile
-- spectrum to the file named by $WRK_SPECTRUM, in perf/http_load's layout (http_load_report.h):
-- "percentile,value_ms,one_over_one_minus_p", 4 points per halving of the remaining share, so
-- tools/plot_latency.sh draws wrk beside http_load. wrk's latency runs from each request's
-- actual send (closed loop: it waits for a slow server instead of recording the wait).
--   WRK_SPECTRUM=out.csv wrk ... -s perf/wrk/spectrum.lua http://HOST:PORT/plaintext
done = function(summary, latency, requests)
  local path = os.getenv("WRK_SPECTRUM")
  if path == nil or path == "" then return end
  local f = assert(io.open(path, "w"))
  f:write("percentile,value_ms,one_over_one_minus_p\n")
  local n = summary.requests
  local last = 1 - 1 / math.max(n, 2)
  local k = 0
  while true do
    local p = 1 - 0.5 ^ (k / 4)
    if p > last then break end
    f:write(string.format("%.6f,%.6f,%.3f\n", p * 100, latency:percentile(p * 100) / 1000, 1 / (1 - p)))
    k = k + 1
  end
  f:write(string.format("%.6f,%.6f,%.3f\n", last * 100, latency.max / 1000, 1 / (1 - last)))
  f:close()
end
