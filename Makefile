# The two commands a fresh machine needs: `make demo` and `make test`.
# Each creates .venv when it is missing and installs the project into it;
# the install is redone only when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install prometheus clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/vecsched demo

# The tests run a real Prometheus server and promtool (Debian's `prometheus` package).
# As root with apt they are installed here; otherwise one line says how. No stamp: the
# check is two `command -v`. Installing does not start the packaged service where there
# is no systemd (invoke-rc.d finds no runlevel, and containers' policy-rc.d denies it).
prometheus:
	@if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; \
	  else \
	    echo "make test needs prometheus and promtool: sudo apt-get install --no-install-recommends prometheus (or put both from https://prometheus.io/download/ on PATH)" >&2; exit 1; \
	  fi; \
	fi

test: $(STAMP) prometheus
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info
