-- Refresh (rotating); values: refresh_token, client_id of the public client. Each token once.
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
scenario = {
  method = "POST", path = "/oauth/token", expect = 200, expect_body = '"refresh_token"', once = true,
  headers = {["Content-Type"] = "application/x-www-form-urlencoded"},
  body = "grant_type=refresh_token&refresh_token={1}&client_id={2}",
}
require("common")
