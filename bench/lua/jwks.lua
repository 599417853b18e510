-- RFC 7517 key set of the bench project.
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
scenario = {method = "GET", path = "/.well-known/jwks.json", expect = 200, expect_body = '"keys"'}
require("common")
