-- wrk script of the post-* scenarios: every request is a POST of the JSON body in the file
-- $BENCH_BODY_FILE (Content-Type and Authorization come from wrk -H), then report.lua's reporter.
local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
