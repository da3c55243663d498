# Berth build, test and demo entry points. `make help` lists them.
SHELL := /usr/bin/env bash
GO ?= go
BIN := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
# The commit's date, not the time of the build: rebuilding an unchanged
# tree then finds the binaries up to date instead of relinking them.
BUILD_DATE ?= $(shell TZ=UTC git log -1 --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
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
test: lint test-unit test-integration test-perf ## Lint, unit and integration tests (-race), then the small end-to-end benchmark fixture.

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
	cd hack/perfchart && $(GO) run . -in $(abspath $(PERF_OUT)) -charts $(CURDIR)/docs/benchmarks -benchmarks $(CURDIR)/BENCHMARKS.md -notes $(CURDIR)/docs/benchmarks/e2e-notes.md

.PHONY: test-perf
test-perf: ## The small end-to-end benchmark fixture as a test, without -race (50 nodes x 10 PVs, 100 pods, 3 runs; about a minute).
	$(GO) test -count=1 -timeout 15m -v -skip '^TestBenchE2E$$' ./test/perf

.PHONY: fuzz
fuzz: ## Fuzz the matcher against its brute-force oracle for FUZZTIME (default 60s).
	$(GO) test -run '^$$' -fuzz FuzzAssign -fuzztime $${FUZZTIME:-60s} ./pkg/plugins/volumebinding/matching

# ---- Local cluster, demo, e2e, image -------------------------------------
# The local cluster runs real kube-apiserver, kube-controller-manager and etcd
# built from the pinned modules (no downloads of binaries), simulated
# kubelets, and Berth's two binaries, as processes on 127.0.0.1 with state in
# .local/ (see hack/localcluster).
LOCAL_DIR ?= .local
K8S_VERSION = $(shell $(GO) list -m -f '{{.Version}}' k8s.io/kubernetes)
K8S_LDFLAGS = -X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=$(word 2,$(subst ., ,$(K8S_VERSION))) \
	-X k8s.io/component-base/version.gitTreeState=clean
LOCALCLUSTER = $(BIN)/berth-localcluster --dir $(LOCAL_DIR) --bin $(BIN)
E2E_FLAGS ?= -count=1 -v -timeout 30m
IMAGE ?= ghcr.io/berth-dev/berth:dev
KIND_CLUSTER ?= berth-e2e

.PHONY: local-build
local-build: ## Build everything the local cluster runs into bin/ (the first build compiles Kubernetes: 7-13 minutes on 2 cores).
	@mkdir -p $(BIN)
	@if [ ! -x $(BIN)/kube-apiserver ]; then echo "Building the local cluster's binaries from Go modules. The first build compiles about 2,700 packages of Kubernetes, etcd and Berth and takes 7-13 minutes on 2 cores; later builds take seconds."; fi
	@hack/gobuild.sh "kube-apiserver, kube-controller-manager $(K8S_VERSION), berth-localcluster, berth-simkubelet, berth-demo" \
		-ldflags "-s -w $(K8S_LDFLAGS)" -o $(BIN)/ k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager ./hack/cmd/...
	@hack/gobuild.sh "berth-scheduler, berth-nodefailover" -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/scheduler ./cmd/nodefailover
	@ln -f $(BIN)/scheduler $(BIN)/berth-scheduler && ln -f $(BIN)/nodefailover $(BIN)/berth-nodefailover
	@hack/gobuild.sh "etcd $$($(GO) list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)" -ldflags "-s -w" -o $(BIN)/etcd go.etcd.io/etcd/server/v3

.PHONY: local-up
local-up: local-build ## Start the local cluster (5 simulated nodes) in .local/ and print its KUBECONFIG.
	@$(LOCALCLUSTER) up

.PHONY: local-down
local-down: ## Stop every process of the local cluster and remove its state (logs stay in .local/logs).
	@if [ ! -x $(BIN)/berth-localcluster ]; then $(GO) build -o $(BIN)/berth-localcluster ./hack/cmd/berth-localcluster; fi
	@$(LOCALCLUSTER) down

.PHONY: demo
demo: local-build ## The main job on a local cluster: tightest-fit placement, a node dies, failover, hand-off (tears down at the end).
	@$(BIN)/berth-demo --dir $(LOCAL_DIR) --bin $(BIN)

.PHONY: e2e
e2e: local-build ## The e2e suite (test/e2e) on a fresh local cluster, torn down afterwards.
	@BIN=$(BIN) LOCAL_DIR=$(LOCAL_DIR) E2E_FLAGS="$(E2E_FLAGS)" hack/e2e-local.sh

.PHONY: e2e-kind
e2e-kind: ## The e2e suite on a kind cluster with the image and manifests (needs Docker and kind; see README).
	@KIND_CLUSTER=$(KIND_CLUSTER) E2E_FLAGS="$(E2E_FLAGS)" hack/e2e-kind.sh

.PHONY: image
image: ## Build the container image $(IMAGE) with both binaries (needs Docker).
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(IMAGE) .

.PHONY: clean
clean: ## Remove build outputs.
	rm -rf $(BIN)
