# mcpauth — `make run` serves the embedded default; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2
export PUBLIC_URL ?= http://$(HOST):$(PORT)

.PHONY: install run test migrate lint clean bench bench-scale bench-soak bench-wrk

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

run: migrate
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py bootstrapdemo
	@echo "  Serving on http://$(HOST):$(PORT)  (Ctrl-C to stop)"
	$(BIN)/gunicorn mcpauth_service.wsgi:application --bind $(HOST):$(PORT) --workers $(WORKERS) \
		--access-logfile - --error-logfile - --log-level warning

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Benchmarks (docs/performance.md): own database (BENCH_DATABASE_URL, default mcpauth_bench) and
# Redis db (BENCH_REDIS_URL, default db 9); loopback only; results in var/bench/.
bench-wrk:
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& echo "installing wrk (Debian package)" && apt-get install -y -qq wrk >/dev/null; } \
		|| { echo "make bench needs wrk: apt-get install -y wrk (Debian/Ubuntu), or brew install wrk"; exit 1; }

bench: install bench-wrk
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-scale: install bench-wrk
	$(BIN)/python -m bench.run --scale $(BENCH_ARGS)

bench-soak: install bench-wrk
	$(BIN)/python -m bench.run --soak 300 $(BENCH_ARGS)

clean:
	rm -rf $(VENV) staticfiles var .pytest_cache
