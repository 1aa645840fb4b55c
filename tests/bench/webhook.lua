-- webhook.lua - wrk script for tests/bench/run's conversations/webhook row:
-- POST /webhooks/twilio/conversations with the pre-signed onMessageAdded
-- events of webhook-requests.mjs (file $BENCH_WEBHOOK_REQUESTS, one
-- "<signature>\t<body>" a line), each sent once, so every request is a
-- new message that is stored, published and queued for the AI.
--
-- wrk gives each thread its own Lua state and the script runs several
-- times (preflight, warm-up, measurement), so thread k sends lines
-- start+k, start+k+S, start+k+2S, ... (S = $BENCH_WEBHOOK_STRIDE, at least
-- the number of threads), and done() writes where the next run starts to
-- $BENCH_WEBHOOK_REQUESTS.next.  A thread that runs out of lines starts
-- its share again; those requests are duplicates (cheaper than new
-- messages), and done() prints "webhook.lua: N requests repeated" so
-- tests/bench/run can say the row does not count.
--
-- SPDX-License-Identifier: MIT

local file = os.getenv("BENCH_WEBHOOK_REQUESTS")
local stride = tonumber(os.getenv("BENCH_WEBHOOK_STRIDE") or "") or 1
local threads = {}

local function start_line()
	local f = io.open(file .. ".next", "r")
	local n = f and tonumber(f:read("*l") or "") or 0
	if f then f:close() end
	return n
end

function setup(thread)
	thread:set("id", #threads)
	table.insert(threads, thread)
end

function init(args)
	if id >= stride then
		error("webhook.lua: more wrk threads than BENCH_WEBHOOK_STRIDE")
	end
	local start, i = start_line(), 0
	lines = {}
	for line in io.lines(file) do
		if i >= start and (i - start) % stride == id then
			local tab = line:find("\t", 1, true)
			lines[#lines + 1] = { line:sub(1, tab - 1), line:sub(tab + 1) }
		end
		i = i + 1
	end
	if #lines == 0 then
		error("webhook.lua: no request left in " .. file)
	end
	used, repeated = 0, 0
	headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
end

function request()
	local n = #lines
	local l = lines[used % n + 1]
	if used >= n then
		repeated = repeated + 1
	end
	used = used + 1
	headers["X-Twilio-Signature"] = l[1]
	return wrk.format("POST", nil, headers, l[2])
end

function done(summary, latency, requests)
	local most, rep = 0, 0
	for _, t in ipairs(threads) do
		most = math.max(most, t:get("used"))
		rep = rep + t:get("repeated")
	end
	local f = assert(io.open(file .. ".next", "w"))
	f:write(string.format("%d\n", start_line() + most * stride))
	f:close()
	if rep > 0 then
		io.write(string.format("webhook.lua: %d requests repeated\n", rep))
	end
end
