# Two set-up commands on a fresh machine: `make demo` and `make test`.
# Each creates .venv (CPU build of torch first, so no CUDA wheels are pulled) and installs the project.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-all bench install clean fashion-mnist

# The quick start trains on Fashion-MNIST, which Debian ships as the package dataset-fashion-mnist:
# `make demo` installs it when its files are missing (apt-get as root, else through sudo) and
# otherwise stops with one line saying what to do. FASHION_DIR is where the loader looks by default.
FASHION_DIR ?= /usr/share/datasets/fashion-mnist
APT_GET ?= apt-get

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

fashion-mnist:
	@ls $(FASHION_DIR)/train-images-idx3-ubyte* >/dev/null 2>&1 && exit 0; \
	fail() { echo "make: Fashion-MNIST is not in $(FASHION_DIR): $$1" >&2; exit 1; }; \
	command -v $(APT_GET) >/dev/null 2>&1 || fail "no apt-get here; put its four IDX files there"; \
	if [ "$$(id -u)" = 0 ]; then sudo=; elif command -v sudo >/dev/null 2>&1; then sudo=sudo; \
	else fail "run 'apt-get install dataset-fashion-mnist' as root"; fi; \
	echo "make: installing dataset-fashion-mnist (the quick start's data) with $${sudo:+sudo }$(APT_GET)" >&2; \
	{ $$sudo $(APT_GET) update -qq && $$sudo $(APT_GET) install -y -qq dataset-fashion-mnist >/dev/null; } \
	  || fail "'$(APT_GET) install dataset-fashion-mnist' failed (see above)"; \
	ls $(FASHION_DIR)/train-images-idx3-ubyte* >/dev/null 2>&1 || fail "dataset-fashion-mnist put its files elsewhere"

demo: $(STAMP) fashion-mnist
	$(BIN)/nas search runs/quickstart.toml --overwrite

test: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadgroup

test-all: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadgroup -m 'not gpu'

clean:
	rm -rf $(VENV) build *.egg-info
