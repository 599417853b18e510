-- The soak mix (make bench-soak): a cycle of whole requests; values: method, path,
-- Authorization (may be empty), Content-Type (may be empty), body (may be empty).
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
scenario = {
  method = "{1}", path = "{2}", expect = 200,
  headers = {["Authorization"] = "{3}", ["Content-Type"] = "{4}"},
  body = "{5}",
}
require("common")
