-- login.lua - wrk script for tests/bench/run's login row: every request
-- is POST /api/agents/login with the demo agent's correct credentials
-- (nonflexctl seed), so neither the app's failure counters nor its
-- audit of failures come into play; a 401 or 429 shows up as a non-2xx
-- response in wrk's output and the row does not count.
--
-- SPDX-License-Identifier: MIT

wrk.method = "POST"
wrk.body = '{"username":"sarah","password":"password123"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Tenant-Id"] = "tenant1"
