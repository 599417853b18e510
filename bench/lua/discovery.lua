-- RFC 8414 authorization server metadata of the bench project.
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
scenario = {method = "GET", path = "/.well-known/oauth-authorization-server", expect = 200,
            expect_body = '"issuer"'}
require("common")
