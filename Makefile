# Two set-up commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv (CPU build of torch first, so no CUDA wheels are pulled) and installs the project.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-all bench install clean fashion-mnist system-deps docs

# The Debian packages outside Python, checked and installed where missing by one script,
# .ci/system-deps (apt-get as root, else `sudo -n`; instant when all are there), also used by .ci/run.
# `make test` needs chromium, postgresql and dataset-fashion-mnist: what cannot be installed is named
# in one line, and the tests needing it fail under CI=true and skip locally, saying why.
# `make demo` trains on Fashion-MNIST (Debian's dataset-fashion-mnist) and stops when it cannot be had.
# FASHION_DIR is where the loader looks by default.
FASHION_DIR ?= /usr/share/datasets/fashion-mnist
APT_GET ?= apt-get
SYSTEM_DEPS := FASHION_DIR='$(FASHION_DIR)' APT_GET='$(APT_GET)' bash .ci/system-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The documentation site in site/ (mkdocs.yml); --strict: any warning (a broken link or anchor, a page
# left out of the nav, a docstring mkdocstrings cannot render) fails the build.
DOCS_STAMP := $(VENV)/.installed-docs

$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

fashion-mnist:
	@$(SYSTEM_DEPS) --require dataset-fashion-mnist

system-deps:
	@$(SYSTEM_DEPS)

demo: $(STAMP) fashion-mnist
	$(BIN)/nas search runs/quickstart.toml --overwrite

test: $(DOCS_STAMP) system-deps
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadgroup

test-all: $(DOCS_STAMP) system-deps
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadgroup -m 'not gpu'

clean:
	rm -rf $(VENV) build *.egg-info site
