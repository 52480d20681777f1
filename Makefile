# Everything runs from a fresh clone: `make conformance` and `make test` set themselves up.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install fuzzer test lint typecheck unit conformance fuzz fuzz-native bench bench-engines clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py impl/rfc6455/_speedups.c conformance/wsconform/native/_masking.c
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "wsconform needs Python 3.11+ (set PYTHON=python3.11)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@# Bytecode now, as a wheel install would: an editable install leaves it to each run,
	@# which recompiles every module when PYTHONDONTWRITEBYTECODE is set (0.3-0.6 s a run).
	$(PY) -m compileall -q impl/rfc6455 conformance/wsconform
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
# (libFuzzer exits non-zero on a crash, so a crash fails the target), then each function of
# the compiled accelerator for FUZZ_RUNS executions, on a build of it with AddressSanitizer
# and libFuzzer's coverage instrumentation (clang) kept in its own directory: the package's
# own build is never touched. atheris ships the ASan runtime linked with libFuzzer; it must
# be loaded before Python starts (LD_PRELOAD). PYTHONMALLOC=malloc gives every Python object
# its own malloc block, so ASan sees an overrun of a bytes or str the C code writes into.
# Leak detection is off: CPython leaves its interned objects and modules allocated at exit.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := frame handshake inflate connection
FUZZ_RUNS ?= 1000000
NATIVE_TARGETS := native-mask native-read-header native-parse-frames native-parse-messages \
  native-answer-messages native-server-read native-utf8 native-wire-frame
FUZZ_BUILD := build/fuzz-asan
FUZZ_CC ?= $(firstword $(shell for cc in clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14; do command -v $$cc; done))

fuzz: install $(FUZZ_BUILD)/_speedups.so
	HYPOTHESIS_PROFILE=thorough $(VENV)/bin/pytest -q fuzz
	set -e; for target in $(FUZZ_TARGETS); do \
	  $(PY) fuzz/atheris_targets.py $$target -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1; \
	done
	$(MAKE) --no-print-directory fuzz-native

fuzz-native: install $(FUZZ_BUILD)/_speedups.so
	set -e; runtime="$$($(PY) -c 'import atheris; print(atheris.path())')/asan_with_fuzzer.so"; \
	for target in $(NATIVE_TARGETS); do \
	  LD_PRELOAD="$$runtime" ASAN_OPTIONS=detect_leaks=0 PYTHONMALLOC=malloc \
	  RFC6455_FUZZ_SPEEDUPS=$(FUZZ_BUILD)/_speedups.so RFC6455_NO_SPEEDUPS=1 \
	  $(PY) fuzz/atheris_targets.py $$target -runs=$(FUZZ_RUNS) -print_final_stats=1; \
	done

$(FUZZ_BUILD)/_speedups.so: impl/rfc6455/_speedups.c $(STAMP)
	@test -n "$(FUZZ_CC)" || { echo "make fuzz needs clang for its ASan build" \
	  "(Debian: apt-get install clang libclang-rt-dev; or set FUZZ_CC)"; exit 2; }
	$(PY) -c 'import atheris' 2>/dev/null || $(PY) -m pip install --quiet atheris
	mkdir -p $(FUZZ_BUILD)
	$(FUZZ_CC) -shared -fPIC -g -O1 -fno-omit-frame-pointer -fsanitize=address,fuzzer-no-link \
	  -I"$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["include"])')" $< -o $@

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
