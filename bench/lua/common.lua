-- The engine every scenario script shares (wrk 4, LuaJIT).
--
-- A scenario script sets the global `scenario` and then `require("common")`:
--   scenario = {
--     method  = "POST",
--     path    = "/oauth/token",              -- relative to the issuer path given as base=
--     headers = {["Content-Type"] = "application/x-www-form-urlencoded",
--                ["Authorization"] = "{1}"}, -- {n}: field n of the current value line
--     body    = "grant_type=...&code={2}",
--     once    = true,                        -- one-shot values (codes, refresh tokens): each used once
--     expect  = 200,                         -- the status a correct answer has (0: any 2xx)
--     expect_body = '"active":%s*true',      -- optional: a Lua pattern a correct body matches
--   }
--
-- Arguments after `--` (key=value): base=/p/bench  values=/path/to/file  threads=2
-- path=/token (optional): the scenario's path on a server that names its endpoints differently
-- (the peer of bench/compare.py); the request is otherwise the same.
-- Value files hold one tab-separated line per value. In `once` mode thread k of n takes lines
-- k, k+n, k+2n, ... so no value is sent twice; a thread that runs out stops (reported as
-- `exhausted`, which means the driver seeded too few). Otherwise values are cycled.
--
-- done() prints one line, `BENCH_RESULT {json}`, which bench/run.py parses.

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local function parse_args(args)
  local opts = {}
  for _, arg in ipairs(args) do
    local key, value = arg:match("^([%w_]+)=(.*)$")
    if key then opts[key] = value end
  end
  return opts
end

local function split_tabs(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do
    table.insert(fields, field)
  end
  return fields
end

local function fill(template, fields)
  if template == nil then return nil end
  return (template:gsub("{(%d+)}", function(n) return fields[tonumber(n)] or "" end))
end

local function read_values(path, id, n)
  local values = {}
  local file = assert(io.open(path, "r"), "cannot open " .. path)
  local index = 0
  for line in file:lines() do
    if line ~= "" then
      if index % n == id then table.insert(values, split_tabs(line)) end
      index = index + 1
    end
  end
  file:close()
  return values
end

local function build(fields, base, path)
  local headers = {}
  for name, template in pairs(scenario.headers or {}) do
    local value = fill(template, fields)
    if value ~= "" then headers[name] = value end  -- a template that fills to "" sends no header
  end
  local body = fill(scenario.body, fields)
  if body == "" then body = nil end
  return wrk.format(fill(scenario.method or "GET", fields), base .. fill(path, fields), headers, body)
end

function init(args)
  local opts = parse_args(args)
  local base = opts.base or ""
  local path = (opts.path and opts.path ~= "") and opts.path or scenario.path
  local n = tonumber(opts.threads or "1")
  requests = {}
  if opts.values and opts.values ~= "" then
    for _, fields in ipairs(read_values(opts.values, id, n)) do
      table.insert(requests, build(fields, base, path))
    end
  else
    table.insert(requests, build({}, base, path))
  end
  cursor = 0
  exhausted = false
  statuses = {}
  bad_body = 0
  if #requests == 0 then
    exhausted = true
  end
end

function request()
  cursor = cursor + 1
  if cursor > #requests then
    if scenario.once then
      -- Out of one-shot values: stop this thread; resend the last request meanwhile (its
      -- failure is counted, and `exhausted` tells the driver to seed more next time).
      exhausted = true
      wrk.thread:stop()
      return requests[#requests] or wrk.format("GET", "/healthz")
    end
    cursor = 1
  end
  return requests[cursor]
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if scenario.expect_body and status == scenario.expect then
    if not (body and body:find(scenario.expect_body)) then
      bad_body = bad_body + 1
    end
  end
end

local function json_string(s)
  return '"' .. tostring(s):gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

function done(summary, latency, _)
  local merged, bad, out_of_values = {}, 0, false
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses") or {}) do
      merged[status] = (merged[status] or 0) + count
    end
    bad = bad + (thread:get("bad_body") or 0)
    out_of_values = out_of_values or thread:get("exhausted") or false
  end
  local parts = {}
  for status, count in pairs(merged) do
    table.insert(parts, json_string(status) .. ":" .. count)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"statuses":{%s},"expect":%d,"bad_body":%d,"exhausted":%s}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout,
    table.concat(parts, ","), scenario.expect or 200, bad, tostring(out_of_values)))
end
