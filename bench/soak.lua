-- wrk script for bench/soak.sh: rotates requests over a list of routes given as arguments
-- ("GET /path" or "POST /path BODYSIZE"), one route per request, round robin per connection.
local requests = {}
local i = 0

function init(args)
  for _, spec in ipairs(args) do
    local method, path, size = spec:match("^(%u+) (%S+) ?(%d*)$")
    local body = nil
    local headers = {}
    if size ~= nil and size ~= "" then
      body = string.rep("x", tonumber(size))
      headers["Content-Type"] = "application/octet-stream"
    end
    table.insert(requests, wrk.format(method, path, headers, body))
  end
end

function request()
  i = i % #requests + 1
  return requests[i]
end
