-- RFC 7009 revocation of live access tokens by their confidential client; values:
-- "Basic <base64 id:secret>", token. Each token once.
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
scenario = {
  method = "POST", path = "/oauth/revoke", expect = 200, once = true,
  headers = {["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = "{1}"},
  body = "token={2}&token_type_hint=access_token",
}
require("common")
