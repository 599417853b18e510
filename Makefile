# mcpauth — `make run` serves the embedded default; `make test` runs the whole suite;
# `make serve` runs the production server as shipped (no demo) with the environment's settings.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000
export PUBLIC_URL ?= http://$(HOST):$(PORT)

.PHONY: install run serve test fuzz migrate lint clean demo bench bench-scale bench-soak bench-wrk

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

# The server command lives in one place, mcpauth_service/serve.py (granian; WEB_WORKERS, WEB_THREADS).
run: migrate
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py bootstrapdemo
	@echo "  Serving on http://$(HOST):$(PORT)  (Ctrl-C to stop)"
	$(BIN)/python -m mcpauth_service.serve --host $(HOST) --port $(PORT) --access-log

# Production as shipped: migrations, static files, the server; DATABASE_URL, REDIS_URL, SECRET_KEY,
# DIGEST_KEY, KEY_ENCRYPTION_KEY and PUBLIC_URL come from the environment (docs/deployment.md).
serve: migrate
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python -m mcpauth_service.serve --host $(HOST) --port $(PORT)

# The end-to-end tests also run the official MCP TypeScript SDK under Node 20 (git-ignored node_modules):
# v1 (@modelcontextprotocol/sdk) in tests/e2e/ts, v2's client (its CrossAppAccessProvider) in tests/e2e/ts-xaa.
E2E_TS := tests/e2e/ts
E2E_TS_XAA := tests/e2e/ts-xaa
# panva oauth4webapi as a DPoP client (tests/e2e/test_dpop_oauth4webapi.py), with its own lockfile.
E2E_DPOP := tests/e2e/dpop_js
# node oidc-provider as an upstream identity provider (tests/e2e/test_upstream_oidc.py), with its own lockfile.
E2E_IDP := tests/e2e/idp_js

lint: install
	$(BIN)/ruff check .

# The suite runs in TEST_WORKERS processes (pytest-xdist): its tests mostly wait on servers, PostgreSQL
# and Redis, so more processes than CPUs pay. Each worker has its own test database, Redis key prefix
# and sibling databases (tests/conftest.py, tests/servers.py); modules that start one shared stack for
# all their tests (end-to-end issuer, fault and multi-worker servers) run on one worker each
# (`xdist_group`, `--dist loadgroup`). TEST_WORKERS=0 runs everything in this one process.
TEST_WORKERS ?= 4

test: install lint $(E2E_TS)/node_modules/.installed $(E2E_TS_XAA)/node_modules/.installed \
		$(E2E_DPOP)/node_modules/.installed $(E2E_IDP)/node_modules/.installed
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The fuzz suite at length (docs/requests.md): `make test` runs it with a few examples per endpoint;
# this runs FUZZ_EXAMPLES (default 500) per endpoint, random, plus schemathesis' coverage phase.
fuzz: install
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -m fuzz $(PYTEST_ARGS)

$(E2E_TS)/node_modules/.installed: $(E2E_TS)/package-lock.json
	npm ci --prefix $(E2E_TS) --no-audit --no-fund --loglevel=error
	touch $@

$(E2E_TS_XAA)/node_modules/.installed: $(E2E_TS_XAA)/package-lock.json
	npm ci --prefix $(E2E_TS_XAA) --no-audit --no-fund --loglevel=error
	touch $@

$(E2E_DPOP)/node_modules/.installed: $(E2E_DPOP)/package-lock.json
	npm ci --prefix $(E2E_DPOP) --no-audit --no-fund --loglevel=error
	touch $@

$(E2E_IDP)/node_modules/.installed: $(E2E_IDP)/package-lock.json
	npm ci --prefix $(E2E_IDP) --no-audit --no-fund --loglevel=error
	touch $@

# The issuer plus examples/mcp_server.py (port 8001), printing how to connect MCP Inspector or Claude.
demo: migrate
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python examples/demo.py --host $(HOST) --port $(PORT)

# Benchmarks (docs/performance.md): own database (BENCH_DATABASE_URL, default mcpauth_bench) and
# Redis db (BENCH_REDIS_URL, default db 9); loopback only; results in var/bench/.
bench-wrk:
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& echo "installing wrk (Debian package)" && apt-get install -y -qq wrk >/dev/null; } \
		|| { echo "make bench needs wrk: apt-get install -y wrk (Debian/Ubuntu), or brew install wrk"; exit 1; }

# The peer it is measured against: node oidc-provider, pinned in bench/peer (git-ignored node_modules).
BENCH_PEER := bench/peer

$(BENCH_PEER)/node_modules/.installed: $(BENCH_PEER)/package-lock.json
	npm ci --prefix $(BENCH_PEER) --no-audit --no-fund --loglevel=error
	touch $@

bench: install bench-wrk $(BENCH_PEER)/node_modules/.installed
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-scale: install bench-wrk
	$(BIN)/python -m bench.run --scale $(BENCH_ARGS)

bench-soak: install bench-wrk
	$(BIN)/python -m bench.run --soak 300 $(BENCH_ARGS)

clean:
	rm -rf $(VENV) staticfiles var .pytest_cache
