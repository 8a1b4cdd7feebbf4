# The two commands a fresh machine needs: `make demo` and `make test`.
# Each creates .venv when it is missing and installs the project into it;
# the install is redone only when pyproject.toml changes.
# Releasing (README.md, "Release"): `make dist` and `make image`.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The release's version, pyproject.toml's; the image is tagged with it, as deploy/'s
# kustomizations name it (images: newTag).
VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml)
IMAGE ?= ghcr.io/vecsched/vecsched:$(VERSION)
DIST ?= dist
DIST_ENV := build/dist-env

.PHONY: demo test install prometheus dist image clean openb

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/vecsched demo

# Alibaba's GPU trace and the FGD authors' published results into benchmarks/traces/openb, each
# file checked against benchmarks/openb.sha256; only the benchmarks and the README's FGD commands
# need them, never `make test`.
openb: $(STAMP)
	@$(BIN)/python -m benchmarks.openb_fetch --dest benchmarks/traces/openb

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

# The sdist, and the wheel built from it (as `python -m build` does, so a file missing from the
# sdist fails here), into $(DIST)/. Only pip and the build backend pyproject.toml names
# ([build-system] requires, installed into $(DIST_ENV) as pip's isolated builds do): no other tool.
dist: $(BIN)/python
	rm -rf $(DIST) $(DIST_ENV)
	mkdir -p $(DIST_ENV)
	$(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' > $(DIST_ENV)/requirements.txt
	$(BIN)/python -m pip install --quiet --target $(DIST_ENV) -r $(DIST_ENV)/requirements.txt
	PYTHONPATH=$(DIST_ENV) $(BIN)/python -c 'from setuptools import build_meta; build_meta.build_sdist("$(DIST)")' > $(DIST_ENV)/sdist.log
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir $(DIST) $(DIST)/vecsched-$(VERSION).tar.gz
	@ls -1 $(DIST)/vecsched-$(VERSION).tar.gz $(DIST)/vecsched-$(VERSION)-py3-none-any.whl

# The container image of the Dockerfile, tagged $(IMAGE) (`make image IMAGE=registry/vecsched:tag`).
image:
	@command -v docker >/dev/null || { echo "make image needs docker (https://docs.docker.com/engine/install/); it is not on PATH" >&2; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "make image needs a running Docker daemon: docker info fails" >&2; exit 1; }
	docker build -t $(IMAGE) .

clean:
	rm -rf $(VENV) build *.egg-info $(DIST)
