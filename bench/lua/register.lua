-- RFC 7591 open registration (no Authorization header): a public loopback client each time.
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
scenario = {
  method = "POST", path = "/api/oauth/register", expect = 201, expect_body = '"client_id"',
  headers = {["Content-Type"] = "application/json"},
  body = '{"client_name": "Bench MCP client", "redirect_uris": ["http://127.0.0.1:33418/callback"], '
      .. '"grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"], '
      .. '"token_endpoint_auth_method": "none"}',
}
require("common")
