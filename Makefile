# localtailr: `make run` starts it with a demo; `make test` passes the tests.
# Everything either needs is installed here, into .venv (and Debian packages via apt-get).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
SANDBOX := $(CURDIR)/sandbox
WHEELHOUSE := $(CURDIR)/wheelhouse
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export LOCALTAILR_WHEELHOUSE := $(WHEELHOUSE)

.PHONY: install system-packages wheels test test-fast run demo bench bench-peers lint clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3-venv is missing: installing it with apt-get"; \
	  $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q python3-venv && $(PYTHON) -m venv $(VENV); }
	$(VENV)/bin/pip install -q --upgrade uv
	# bytecode compiled once here; a plain .pth path (compat), not an import finder run at every start
	$(VENV)/bin/uv pip install -q --compile-bytecode --python $(PY) -C editable_mode=compat -e '.[test]'
	@touch $@

install: $(VENV)/.installed

system-packages:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  echo "installing Debian's chromium and chromium-driver for the browser tests"; \
	  $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium chromium-driver; }

$(WHEELHOUSE)/.ready: $(VENV)/.installed scripts/wheelhouse.sh
	PY=$(PY) scripts/wheelhouse.sh $(WHEELHOUSE)
	@touch $@

wheels: $(WHEELHOUSE)/.ready

test: lint system-packages wheels
	$(VENV)/bin/pytest -q

test-fast: lint wheels
	$(VENV)/bin/pytest -q -m "not slow and not browser"

run: install wheels
	LOCALTAILR_HOME=$(SANDBOX) $(PY) -m localtailr.demo

demo: install wheels
	LOCALTAILR_HOME=$(SANDBOX) $(PY) -m localtailr.demo --examples-only

# The peers the bench compares against (Redis, Prefect, supervisord; uv is ours already) go
# into the bench's own environment, .bench-venv, never the project's; one that cannot be
# installed is skipped by its row with the reason.
bench-peers: install
	@UV=$(VENV)/bin/uv PY=$(PY) scripts/bench-peers.sh .bench-venv

bench: install wheels bench-peers
	@$(PY) -m compileall -q localtailr  # as an installed package would be (no compile on first run)
	$(PY) -m bench

# ruff (with a complexity limit), the import contract of .importlinter (the layers of
# DESIGN.md), then mypy on the package
lint: install
	$(VENV)/bin/ruff check localtailr tests bench
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy localtailr

clean:
	rm -rf $(VENV) $(WHEELHOUSE) .bench-venv .pytest_cache
	find $(SANDBOX) -mindepth 1 ! -name README.md -exec rm -rf {} +
