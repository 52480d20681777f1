# Everything runs from a fresh clone: `make conformance` and `make test` set themselves up.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install fuzzer test lint typecheck unit conformance fuzz bench bench-engines clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py impl/rfc6455/_speedups.c
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "wsconform needs Python 3.11+ (set PYTHON=python3.11)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The Autobahn fuzzer (Python 2.7) provisioned once into the user's cache, as `wsconform run`
# would do on first use, so the tests find it. Where nothing can run it, say so up front: its
# tests then skip with that reason (and fail under CI=true, where they must run).
fuzzer: install
	@$(VENV)/bin/wsconform doctor --provision || \
	  echo "make test: the Autobahn fuzzer cannot run here (see above): its tests will be skipped"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check impl conformance fuzz bench

typecheck: install
	$(VENV)/bin/mypy

unit: install fuzzer
	$(VENV)/bin/pytest -q
	# The codec again on its pure-Python path, as on a machine without a compiler.
	RFC6455_NO_SPEEDUPS=1 $(VENV)/bin/pytest -q -p no:cacheprovider impl/tests fuzz

# What CI gates on: lint, types, unit + property + real-fuzzer tests.
test: lint typecheck unit

# The main job: the reference server, then the reference client, through the full Autobahn
# suite under the strict gate. The explicit --outdir is what refreshes the committed
# reports/reference/summary.md and reports/clients/reference/summary.md: a run without one
# writes under reports/runs/, which git ignores.
conformance: install
	$(VENV)/bin/wsconform run --engine autobahn --profile full --gate strict --agent reference \
	  --outdir reports/reference
	$(VENV)/bin/wsconform run-client --engine autobahn --profile full --gate strict --agent reference \
	  --outdir reports/clients/reference

# Properties with many more examples, then each coverage-guided target for a bounded time
# (libFuzzer exits non-zero on a crash, so a crash fails the target).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := frame handshake inflate connection
fuzz: install
	HYPOTHESIS_PROFILE=thorough $(VENV)/bin/pytest -q fuzz
	$(PY) -c 'import atheris' 2>/dev/null || $(PY) -m pip install --quiet atheris
	set -e; for target in $(FUZZ_TARGETS); do \
	  $(PY) fuzz/atheris_targets.py $$target -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1; \
	done

bench: install
	$(PY) bench/run.py

# The two engines side by side on the reference (issues 15, 16): no-deflate, 3 repeats of each
# configuration, about 12 minutes here; ENGINES_BENCH='--profile full' for all 517 cases.
ENGINES_BENCH ?=
bench-engines: install fuzzer
	$(PY) bench/engines_side_by_side.py $(ENGINES_BENCH)

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info \
	  reports/*/raw
