-- wrk script of the server benchmark: POST one JSON-RPC `tools/call echo` per request and check each answer.
--
-- Environment: MCP_SESSION_ID (optional) is sent as Mcp-Session-Id on every request (one session shared by
-- every connection: the session was initialized from Python before wrk started); MCP_PROTOCOL_VERSION
-- (default 2025-11-25). Request ids are unique across threads and connections (thread number * 1e9 + a
-- counter), so a stateful server never sees an id still in flight.
--
-- A response counts as good only when its status is 200 and its body (JSON, or an SSE event) carries the
-- echoed text as a result; anything else is counted as bad, and the first bad answer is kept. `done`
-- prints one JSON line: requests, duration, latency percentiles, wrk's socket errors, good and bad counts.

local message = "hello from the benchmark"
local expected = '"text":"' .. message .. '"'
local session = os.getenv("MCP_SESSION_ID")
local version = os.getenv("MCP_PROTOCOL_VERSION") or "2025-11-25"

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_no", thread_count)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  good = 0
  bad = 0
  first_bad = ""
  headers = {
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream",
    ["MCP-Protocol-Version"] = version,
  }
  if session ~= nil and session ~= "" then
    headers["Mcp-Session-Id"] = session
  end
end

function request()
  counter = counter + 1
  local id = thread_no * 1000000000 + counter
  local body = '{"jsonrpc":"2.0","id":' .. id .. ',"method":"tools/call","params":{"name":"echo","arguments":'
    .. '{"message":"' .. message .. '"}}}'
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
  if status == 200 and string.find(body, expected, 1, true) and string.find(body, '"result"', 1, true)
    and not string.find(body, '"isError":true', 1, true) then
    good = good + 1
  else
    bad = bad + 1
    if first_bad == "" then
      first_bad = status .. " " .. string.sub(body, 1, 200)
    end
  end
end

local function quote(text)
  return '"' .. string.gsub(text, '[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end) .. '"'
end

function done(summary, latency, requests)
  local good_total, bad_total, first = 0, 0, ""
  for _, thread in ipairs(threads) do
    good_total = good_total + thread:get("good")
    bad_total = bad_total + thread:get("bad")
    if first == "" then
      first = thread:get("first_bad")
    end
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"good":%d,"bad":%d,"first_bad":%s,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"mean":%.1f,"max":%d}}\n',
    summary.requests, summary.duration, good_total, bad_total, quote(first),
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
