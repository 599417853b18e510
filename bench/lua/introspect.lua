-- RFC 7662 introspection on a warm cache: a small set of live tokens, cycled; values:
-- "Bearer <project secret with introspect>", token.
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
scenario = {
  method = "POST", path = "/oauth/introspect", expect = 200, expect_body = '"active":%s*true',
  headers = {["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = "{1}"},
  body = "token={2}",
}
require("common")
