-- wrk script for bench/memory.py: alternate GET /health and GET /hello/x, and stop each thread
-- after `limit` responses (wrk -s count.lua URL -- LIMIT_PER_THREAD). wrk itself runs until its
-- -d duration; memory.py ends it once the server has counted the requests.
local paths = { "/health", "/hello/x" }
local only = os.getenv("BENCH_PATH")
local limit, sent, done = 0, 0, 0

function init(args)
  limit = tonumber(args[1])
end

function request()
  sent = sent + 1
  return wrk.format(nil, only or paths[sent % 2 + 1])
end

function response(status, headers, body)
  done = done + 1
  if done >= limit then
    wrk.thread:stop()
  end
end
