#!/usr/bin/env bash
# make e2e: bring up a fresh local cluster (hack/localcluster), run the e2e
# suite (test/e2e) against it, check that Berth's components were never
# denied anything under the RBAC of manifests/, and tear the cluster down,
# whatever happens (also on Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
abs() { case $1 in /*) echo "$1" ;; *) echo "$root/$1" ;; esac; }
bin=$(abs "${BIN:-bin}")
dir=$(abs "${LOCAL_DIR:-.local}")
lc() { "$bin/berth-localcluster" --dir "$dir" --bin "$bin" "$@"; }

trap 'exit 130' INT TERM
trap 'lc down' EXIT
lc up
export KUBECONFIG=$dir/kubeconfig
export BERTH_E2E_STOP_NODE="$bin/berth-localcluster --dir $dir node stop {node}"
export BERTH_E2E_RESUME_NODE="$bin/berth-localcluster --dir $dir node resume {node}"
# The local cluster's berth-nodefailover runs with --node-dead-threshold=20s.
export BERTH_E2E_FAILOVER_THRESHOLD=${BERTH_E2E_FAILOVER_THRESHOLD:-20s}
# shellcheck disable=SC2086 # E2E_FLAGS is a list of flags
${GO:-go} test ${E2E_FLAGS:--count=1 -v -timeout 30m} ./test/e2e/...
lc check
