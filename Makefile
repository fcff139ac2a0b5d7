# localtailr: `make run` starts it with a demo; `make test` passes the tests.
# Everything either needs is installed here, into .venv (and Debian packages via apt-get).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
SANDBOX := $(CURDIR)/sandbox
WHEELHOUSE := $(CURDIR)/wheelhouse
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export LOCALTAILR_WHEELHOUSE := $(WHEELHOUSE)

.PHONY: install system-packages wheels test test-fast run demo bench lint clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3-venv is missing: installing it with apt-get"; \
	  $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q python3-venv && $(PYTHON) -m venv $(VENV); }
	$(VENV)/bin/pip install -q --upgrade uv
	$(VENV)/bin/uv pip install -q --python $(PY) -e '.[test]'
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

test-fast: lint
	$(VENV)/bin/pytest -q -m "not slow and not browser"

run: install wheels
	LOCALTAILR_HOME=$(SANDBOX) $(PY) -m localtailr.demo

demo: install wheels
	LOCALTAILR_HOME=$(SANDBOX) $(PY) -m localtailr.demo --examples-only

bench: install wheels
	$(PY) -m bench

# ruff (with a complexity limit), the import contract of .importlinter (the layers of
# DESIGN.md), then mypy on the package
lint: install
	$(VENV)/bin/ruff check localtailr tests bench
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy localtailr

clean:
	rm -rf $(VENV) $(WHEELHOUSE) .pytest_cache
	find $(SANDBOX) -mindepth 1 ! -name README.md -exec rm -rf {} +
