-- wrk script: every request is a different pre-built one, read from the file named by
-- TORREYA_BENCH_REQUESTS (one request a line: method, path, bearer token, JSON body, by
-- tabs), so each check-in is a distinct resident x event pair and each board request a
-- chosen village. Threads take interleaved slices. At the end one line "WRK_JSON {...}"
-- gives the figures bench/*.py read.
local path = os.getenv("TORREYA_BENCH_REQUESTS")
local threads = {}
local counter = 0
local requests = {}
local thread_index, thread_count = 0, 1

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  thread_count = #threads > 0 and #threads or 1
  for line in io.lines(path) do
    local method, path, bearer, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    local headers = {}
    if body ~= "" then
      headers["Content-Type"] = "application/json"
    else
      body = nil
    end
    if bearer ~= "" then
      headers["Authorization"] = "Bearer " .. bearer
    end
    requests[#requests + 1] = wrk.format(method, path, headers, body)
  end
end

function request()
  local n = counter * thread_count + thread_index
  counter = counter + 1
  return requests[(n % #requests) + 1]
end

done = dofile(os.getenv("TORREYA_BENCH_DONE"))
