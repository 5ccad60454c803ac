# edgekit — the two commands a fresh machine needs are `make synth` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Where tools/build.sh finds prebuilt tools and the provider sources the Go module proxy
# refuses. Defaults: the shared folders beside the checkout, when they exist; unset, every
# tool is built from source (see README "Development").
EDGEKIT_TOOL_BUNDLE ?= $(abspath $(wildcard ../shared/toolcache))
EDGEKIT_GO_SRC ?= $(abspath $(wildcard ../shared/vendor/go-src))
# pgBackRest's release tarball (the version the nodes' nixpkgs ships), built with meson.
EDGEKIT_C_SRC ?= $(abspath $(wildcard ../shared/vendor/c-src))
export EDGEKIT_TOOL_BUNDLE EDGEKIT_GO_SRC EDGEKIT_C_SRC
# The tool rebuilt from source by `make test` and compared byte for byte with the bundle.
VERIFY_TOOL ?= vultr

.PHONY: synth generate test system-deps worker-deps tools verify-bundle schemas lint unit bench clean help

help:
	@echo "make synth    create .venv, install edgekit, synthesize stacks/ into cdktf.out/"
	@echo "make test     install test deps, build/reuse the real tools, lint, run every test"
	@echo "make tools    install OpenTofu, CUE and the providers into the tool cache"
	@echo "              (from EDGEKIT_TOOL_BUNDLE when it matches, else built from source)"
	@echo "make schemas  re-dump the pinned providers' schemas into edgekit/schema/data (and the bindings)"
	@echo "make bench    run the synth benchmark"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

synth: $(STAMP)
	$(BIN)/edgekit synth

generate: $(STAMP)
	$(BIN)/edgekit generate

tools:
	tools/build.sh
	tools/build-wireguard-go.sh

verify-bundle:
	@if [ -n "$(EDGEKIT_TOOL_BUNDLE)" ]; then tools/build.sh --verify-bundle $(VERIFY_TOOL); \
	else echo "no tool bundle (EDGEKIT_TOOL_BUNDLE unset): every tool was built from source"; fi

schemas: $(STAMP) tools
	$(BIN)/python tools/dump_schemas.py
	$(BIN)/python tools/gen_bindings.py

lint: $(STAMP)
	$(BIN)/ruff check edgekit stacks tests bench tools
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q -m "not tools"

system-deps:
	tools/system-deps.sh

WORKER_MODULES := services/edge-worker/node_modules/.package-lock.json
$(WORKER_MODULES): services/edge-worker/package-lock.json
	cd services/edge-worker && npm ci --no-audit --no-fund --ignore-scripts
	touch $(WORKER_MODULES)

worker-deps: $(WORKER_MODULES)

# The SARIF 2.1.0 JSON Schema (OASIS), from Microsoft's npm package, for the test that
# validates `edgekit check --format sarif` (kept in the venv, not committed).
SARIF_SCHEMA := $(VENV)/sarif-schema-2.1.0.json
$(SARIF_SCHEMA): | $(STAMP)
	tmp="$$(mktemp -d)" && cd "$$tmp" && npm pack --silent @microsoft/jest-sarif@1.0.0-beta.0 \
	  >/dev/null && tar xzf microsoft-jest-sarif-1.0.0-beta.0.tgz \
	  package/lib/schemas/sarif-2.1.0-rtm.5.json && \
	  mv package/lib/schemas/sarif-2.1.0-rtm.5.json "$(CURDIR)/$(SARIF_SCHEMA)" && rm -rf "$$tmp"

test: $(STAMP) system-deps worker-deps tools lint verify-bundle $(SARIF_SCHEMA)
	$(BIN)/python tools/dump_schemas.py --check
	CUE="$$($(BIN)/python -c 'from tools.toolpaths import cue_bin; print(cue_bin())')" && \
	  cd cue && "$$CUE" vet -c ./...
	$(BIN)/edgekit check --generated
	$(BIN)/edgekit check
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/synth_scale.py

clean:
	rm -rf cdktf.out .pytest_cache .mypy_cache .ruff_cache
