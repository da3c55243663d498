# Berth build, test and demo entry points. `make help` lists them.
SHELL := /usr/bin/env bash
GO ?= go
BIN := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -X github.com/berth-dev/berth/pkg/version.Version=$(VERSION) \
	-X github.com/berth-dev/berth/pkg/version.GitCommit=$(COMMIT) \
	-X github.com/berth-dev/berth/pkg/version.BuildDate=$(BUILD_DATE)
# Unit tests: everything but the real-control-plane suites.
UNIT_PKGS = $(shell $(GO) list ./... | grep -v -e /test/integration -e /test/e2e -e /test/perf)
TEST_FLAGS ?= -race -count=1
BENCH ?= .

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/berth-scheduler (and the other binaries that exist).
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/berth-scheduler ./cmd/scheduler
	@if [ -d cmd/nodefailover ]; then $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/berth-nodefailover ./cmd/nodefailover; fi

.PHONY: test
test: lint test-unit test-integration ## Lint, then unit and integration tests, all with -race.

.PHONY: test-unit
test-unit: ## Unit tests (-race).
	$(GO) test $(TEST_FLAGS) $(UNIT_PKGS)

.PHONY: test-integration
test-integration: ## Integration tests on an in-process kube-apiserver, etcd and controllers (-race).
	@if [ -d test/integration ]; then $(GO) test $(TEST_FLAGS) -timeout 30m ./test/integration/...; fi

.PHONY: lint
lint: ## gofmt and go vet.
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

.PHONY: bench
bench: ## Go benchmarks: Berth's Filter vs the in-tree VolumeBinding Filter (5000 nodes x 10 PVs).
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -timeout 60m ./pkg/...

# End-to-end benchmark (test/perf): Berth vs the in-tree scheduler vs a
# pre-bound limit, each on a fresh in-process control plane per run.
PERF_FIXTURES ?= 500x10x1000x1,5000x10x1000x1,500x10x500x3
PERF_MODES ?= berth,in-tree,limit
PERF_RUN_TIMEOUT ?= 10m
PERF_OUT ?= _output/perf

.PHONY: bench-e2e
bench-e2e: ## End-to-end benchmark on PERF_FIXTURES (NODESxPVSxPODSxCLAIMS,...); writes $(PERF_OUT), docs/benchmarks/*.png and BENCHMARKS.md.
	@mkdir -p $(PERF_OUT)
	BERTH_PERF_FIXTURES='$(PERF_FIXTURES)' BERTH_PERF_MODES='$(PERF_MODES)' BERTH_PERF_RUN_TIMEOUT=$(PERF_RUN_TIMEOUT) \
		BERTH_PERF_OUT=$(abspath $(PERF_OUT)) $(GO) test -count=1 -timeout 6h -run '^TestBenchE2E$$' -v ./test/perf
	cd hack/perfchart && $(GO) run . -in $(abspath $(PERF_OUT)) -charts $(CURDIR)/docs/benchmarks -benchmarks $(CURDIR)/BENCHMARKS.md

.PHONY: test-perf
test-perf: ## The small end-to-end benchmark fixture as a test (50 nodes x 10 PVs, 100 pods; about a minute).
	$(GO) test -count=1 -timeout 15m -v ./test/perf

.PHONY: fuzz
fuzz: ## Fuzz the matcher against its brute-force oracle for FUZZTIME (default 60s).
	$(GO) test -run '^$$' -fuzz FuzzAssign -fuzztime $${FUZZTIME:-60s} ./pkg/plugins/volumebinding/matching

.PHONY: clean
clean: ## Remove build outputs.
	rm -rf $(BIN)
