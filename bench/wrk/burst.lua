-- wrk script for a crowd at one event: each resident (a line of TORREYA_BENCH_REQUESTS: a
-- bearer token) scans the rotating code once, the code the screen shows at that moment
-- (TORREYA_BENCH_CODES: "window<TAB>code" lines, 30-second windows of the Unix clock, as
-- the server counts them). TORREYA_BENCH_PACE: the mean milliseconds a connection waits
-- before its next resident (0: all at once). Each scan comes on a new connection
-- ("Connection: close"), as from a phone of its own: a connection kept idle past the
-- server's keep-alive would be closed under a request, which wrk, unlike a browser, does
-- not send again. After the last answer the thread stops. The
-- WRK_BURST line counts every answer by status; WRK_JSON has wrk's latency figures.
local bearers, codes, pace = {}, {}, tonumber(os.getenv("TORREYA_BENCH_PACE") or "0")
local path = os.getenv("TORREYA_BENCH_PATH") or "/api/v1/checkins"
-- promised: requests delay() has let through; wrk asks delay() before every request.
-- answered, ok, other, total: globals, so done() (another Lua state) can read them.
local promised, sent = 0, 0
answered, ok, other, total = 0, 0, 0, 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(os.getenv("TORREYA_BENCH_REQUESTS")) do
    bearers[#bearers + 1] = line
  end
  for line in io.lines(os.getenv("TORREYA_BENCH_CODES")) do
    local window, code = line:match("^(%d+)\t(.*)$")
    codes[tonumber(window)] = code
  end
  total = #bearers
  math.randomseed(2026)
end

function delay()
  if promised >= #bearers then
    return 3600000  -- nobody left: this connection waits for the others' answers
  end
  promised = promised + 1
  if pace > 0 then
    return math.random(0, 2 * pace)
  end
  return 0
end

function request()
  if promised == 0 then  -- wrk builds one request to check the script: not a resident's
    return wrk.format("POST", path)
  end
  sent = sent + 1
  local code = codes[math.floor(os.time() / 30)]
  return wrk.format("POST", path, {["Content-Type"] = "application/json",
                                   ["Authorization"] = "Bearer " .. bearers[sent],
                                   ["Connection"] = "close"},
                    '{"token": "' .. code .. '"}')
end

function response(status, headers, body)
  answered = answered + 1
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    other = other + 1
  end
  if answered >= #bearers then
    wrk.thread:stop()
  end
end

local figures = dofile(os.getenv("TORREYA_BENCH_DONE"))

function done(summary, latency, requests)
  local sum = {total = 0, answered = 0, ok = 0, other = 0}
  for _, thread in ipairs(threads) do
    for name in pairs(sum) do sum[name] = sum[name] + thread:get(name) end
  end
  io.write(string.format('WRK_BURST {"residents": %d, "answered": %d, "ok": %d, "other": %d}\n',
                         sum.total, sum.answered, sum.ok, sum.other))
  figures(summary, latency, requests)
end
