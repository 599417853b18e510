-- RFC 7662 introspection on a cold cache: every token introspected once, never seen before.
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
scenario = {
  method = "POST", path = "/oauth/introspect", expect = 200, expect_body = '"active":%s*true', once = true,
  headers = {["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = "{1}"},
  body = "token={2}",
}
require("common")
