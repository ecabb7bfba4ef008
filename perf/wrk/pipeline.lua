-- perf/wrk/pipeline.lua — wrk sends DEPTH requests for PATH back to back on each connection and
-- waits for all DEPTH responses before the next batch (HTTP/1.1 pipelining).
--   wrk ... http://HOST:PORT -s perf/wrk/pipeline.lua -- DEPTH [PATH]   (defaults: 16 /plaintext)
-- wrk counts every response, so req/s counts requests, not batches; its latency is per batch.
init = function(args)
  local depth = tonumber(args[1]) or 16
  local path = args[2] or "/plaintext"
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format(nil, path)
  end
  req = table.concat(r)
end

request = function()
  return req
end
