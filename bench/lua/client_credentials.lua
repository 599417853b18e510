-- client_credentials at the token endpoint; values: "Basic <base64 id:secret>" of seeded
-- confidential clients, cycled.
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
scenario = {
  method = "POST", path = "/oauth/token", expect = 200, expect_body = '"access_token"',
  headers = {["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = "{1}"},
  body = "grant_type=client_credentials",
}
require("common")
