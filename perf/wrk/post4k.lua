-- perf/wrk/post4k.lua — every request is a POST of a SIZE-byte body (default 4096) with
-- Content-Length; the path is the URL's (perf/http_compare.sh uses /echo).
--   wrk ... http://HOST:PORT/echo -s perf/wrk/post4k.lua [-- SIZE]
init = function(args)
  local size = tonumber(args[1]) or 4096
  wrk.method = "POST"
  wrk.body = string.rep("x", size)
  wrk.headers["Content-Type"] = "application/octet-stream"
end
