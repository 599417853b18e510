-- Code redemption with PKCE (S256); values: code, code_verifier, redirect_uri (form-encoded),
-- client_id of a public client. Each code once.
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
scenario = {
  method = "POST", path = "/oauth/token", expect = 200, expect_body = '"access_token"', once = true,
  headers = {["Content-Type"] = "application/x-www-form-urlencoded"},
  body = "grant_type=authorization_code&code={1}&code_verifier={2}&redirect_uri={3}&client_id={4}",
}
require("common")
