-- wrk script: POST OpenAI images bodies with a unique prompt each (every request generates).
-- usage: wrk ... -s bench/openai_unique.lua URL -- <run-prefix> <size> [output_format]
local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  prefix = args[1] or tostring(os.time())
  size = args[2] or "64x64"
  fmt = args[3] or "webp"
  counter = 0
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"prompt": "%s t%d n%d", "size": "%s", "seed": 1, "output_format": "%s"}',
    prefix, tid, counter, size, fmt)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
