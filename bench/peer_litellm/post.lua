-- wrk script for bench/peer_litellm/run.py: POST the body in BODY_FILE (Content-Type from
-- CONTENT_TYPE, default application/json; extra "Name: value" headers in HEADERS, '|'-separated).
-- Every "__N__" in the body (at most one) becomes a token unique to the request, so that no
-- target can answer from a cache. At the end one JSON line of figures goes to WRK_OUT.
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
local template = f:read("*a")
f:close()
local head, tail = template, nil
local at = string.find(template, "__N__", 1, true)
if at then
  head, tail = string.sub(template, 1, at - 1), string.sub(template, at + 5)
end
wrk.method = "POST"
wrk.body = template
wrk.headers["Content-Type"] = os.getenv("CONTENT_TYPE") or "application/json"
for line in string.gmatch(os.getenv("HEADERS") or "", "[^|]+") do
  local k, v = string.match(line, "^%s*([^:]+):%s*(.-)%s*$")
  if k then wrk.headers[k] = v end
end
local counter = 0
local salt = tostring(os.time()) .. "-" .. tostring(math.random(1, 1e9))

function request()
  if not tail then return wrk.format() end
  counter = counter + 1
  return wrk.format(nil, nil, nil, head .. salt .. "-" .. counter .. tail)
end

function done(summary, latency, requests)
  local s = summary.duration / 1e6
  local e = summary.errors
  local out = string.format(
    '{"requests":%d,"duration_s":%.3f,"rps":%.2f,"bytes":%d,' ..
    '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,' ..
    '"non2xx":%d,"errors":%d}',
    summary.requests, s, summary.requests / s, summary.bytes,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect + e.read + e.write + e.timeout + e.status)
  local p = os.getenv("WRK_OUT")
  if p and p ~= "" then
    local o = assert(io.open(p, "w")); o:write(out .. "\n"); o:close()
  end
end
