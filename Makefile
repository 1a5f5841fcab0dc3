# The two commands a newcomer needs: `make demo` and `make test`.
# Both create ./.venv and install the project into it on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: demo test soak lint openapi bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)
	$(BIN)/bridgehead demo

# scripts/setup-browser installs Debian chromium for the browser tests.
# scripts/setup-odbc installs the ODBC driver manager and drivers the database
# suite needs (as root; elsewhere it says what is missing and those tests skip).
# The suite runs on every core through pytest-xdist (PYTEST_WORKERS=0: in this one process, as
# `pytest` alone does); PYTEST_ARGS passes more options through.
PYTEST_WORKERS ?= auto
test: $(STAMP)
	@bash scripts/setup-odbc
	@bash scripts/setup-browser
	$(BIN)/ruff check gateway legacy_adapters sync tests bench
	$(BIN)/mypy
	$(BIN)/bridgehead openapi guard --base auto
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# The sync state-machine test with a long example budget (make test runs a short, fixed-seed one).
soak: $(STAMP)
	BRIDGEHEAD_SOAK=1 $(BIN)/python -m pytest tests/sync/test_state_machine.py -q -p no:randomly $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check gateway legacy_adapters sync tests bench
	$(BIN)/mypy
	$(BIN)/ruff format --check gateway legacy_adapters sync tests bench

# Regenerate the committed OpenAPI documents after a mapping or gateway change.
openapi: $(STAMP)
	$(BIN)/bridgehead openapi -c legacy_adapters/demo/bridgehead.yaml -o openapi/

# Bridgehead vs a hand-written floor endpoint vs sandman2 on a cached 1M-job database, and the sync figures.
# In order: the snapshot diff of 1M rows + throughput at the shop's rate limit (bench/sync_snapshot.py),
# stock latency during a full items run (bench/sync_latency.py), the 1M-row export on PostgreSQL and
# MariaDB through ODBC (bench/backends.py), the request log's cost in-process (bench/cpu.py: one process
# alternating the log on and off, which resolves the 5 % target as two servers under wrk cannot),
# then wrk's interleaved rounds and the SQLite exports
# (python -m bench), which write bench/results/latest.md with every target's status and every table.
# Each phase runs under bench/phase.py (its time, its CPU, the CPU other processes took meanwhile; a
# failed phase is reported as "not measured" and the next one still runs). About 16 minutes on a quiet
# 2-core machine with the data cached: 13.1 at 2bca8e7, plus ~3 for the export rounds and the extra
# request-log pairs (bench/README.md, the phase table).
# BENCH_ROUNDS is both the wrk rounds and the export rounds of Bridgehead and the floor in both export
# phases: 1 for a shorter look (the default, 3, shows the noise); BENCH_ARGS passes options to
# python -m bench, e.g. BENCH_ARGS="--backend sqlite"; SYNC_LATENCY_ARGS="--items 200" for a quick one;
# SYNC_SNAPSHOT_ARGS and BACKENDS_ARGS reach the other two (a trial of the whole chain on small data:
# bench/README.md, the commands under the phase table).
BENCH_ROUNDS ?= 3
PHASE = $(BIN)/python -m bench.phase
bench: export BENCH_STARTED := $(shell date +%s)
bench: $(STAMP)
	@bash scripts/setup-odbc
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } \
		|| { echo "bench: wrk is missing and cannot be installed here (apt-get install wrk as root)"; exit 1; }
	$(PHASE) sync-snapshot -- $(BIN)/python -m bench.sync_snapshot --out bench/results/sync-snapshot.md $(SYNC_SNAPSHOT_ARGS)
	$(PHASE) sync-latency -- $(BIN)/python -m bench.sync_latency --out bench/results/sync-latency.md $(SYNC_LATENCY_ARGS)
	$(PHASE) export-backends -- $(BIN)/python -m bench.backends --out bench/results/export-backends.md \
		--export-rounds $(BENCH_ROUNDS) $(BACKENDS_ARGS)
	$(PHASE) log-cost -- $(BIN)/python -m bench.cpu --scenario get,list_100 --compare-log --rounds 6 --requests 10000,2000 \
		--out bench/results/log-cost.md $(LOG_COST_ARGS)
	$(PHASE) http --strict -- $(BIN)/python -m bench --rounds $(BENCH_ROUNDS) --export-rounds $(BENCH_ROUNDS) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .bridgehead .pytest_cache
