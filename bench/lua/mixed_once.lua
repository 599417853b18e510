-- The mixed profile of make bench (bench/compare.py): what a busy MCP deployment sends, mostly
-- warm introspection, some refreshes, a few registrations, as whole requests; values: method,
-- path, Authorization (may be empty), Content-Type, body. Each line once (refresh tokens rotate);
-- any 2xx is a correct answer (registration answers 201).
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
scenario = {
  method = "{1}", path = "{2}", expect = 0, once = true,
  headers = {["Authorization"] = "{3}", ["Content-Type"] = "{4}"},
  body = "{5}",
}
require("common")
