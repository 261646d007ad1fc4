-- Replays pre-signed Slack requests (one per line: timestamp \t signature \t body), each thread its own share.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path, content_type, nthreads = args[1], args[2], tonumber(args[3])
  reqs = {}
  local n = 0
  for line in io.lines(path) do
    if n % nthreads == id then
      local ts, sig, body = line:match("^(%S+)\t(%S+)\t(.*)$")
      table.insert(reqs, wrk.format("POST", "/slack/events",
        {["Content-Type"] = content_type, ["X-Slack-Request-Timestamp"] = ts, ["X-Slack-Signature"] = sig}, body))
    end
    n = n + 1
  end
  idx = 0
end

function request()
  idx = idx % #reqs + 1
  return reqs[idx]
end
