-- The ceiling: a hello-world Django view on the same server (routed only with BENCH_HELLO=true).
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
scenario = {method = "GET", path = "/bench/hello", expect = 200}
require("common")
