#!/usr/bin/env bash
# make e2e-kind: the e2e suite (test/e2e) on a kind cluster running Berth
# the way users install it: the image from the Dockerfile, manifests/
# applied with kubectl (overlay test/e2e/kind). Needs docker, kind and
# kubectl. Nodes are killed with `docker stop` (and brought back with
# `docker start`). The cluster is deleted at the end unless KEEP_CLUSTER=1.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in docker kind kubectl; do
	command -v "$tool" >/dev/null 2>&1 || { echo "make e2e-kind needs $tool (see README, \"End-to-end tests\")" >&2; exit 1; }
done
cluster=${KIND_CLUSTER:-berth-e2e}
image=ghcr.io/berth-dev/berth:dev # the tag test/e2e/kind/kustomization.yaml deploys

make image IMAGE="$image"
if ! kind get clusters | grep -qx "$cluster"; then
	kind create cluster --name "$cluster" --config test/e2e/kind/kind-config.yaml --wait 3m
fi
if [ "${KEEP_CLUSTER:-}" != 1 ]; then
	trap 'kind delete cluster --name "$cluster"' EXIT
fi
trap 'exit 130' INT TERM
kind load docker-image "$image" --name "$cluster"
export KUBECONFIG
KUBECONFIG=$(mktemp)
kind get kubeconfig --name "$cluster" >"$KUBECONFIG"

kubectl apply -k test/e2e/kind
kubectl -n berth-system rollout status deployment/berth-scheduler deployment/berth-nodefailover --timeout 5m

export BERTH_E2E_STOP_NODE="docker stop {node}"
export BERTH_E2E_RESUME_NODE="docker start {node}"
export BERTH_E2E_FAILOVER_THRESHOLD=${BERTH_E2E_FAILOVER_THRESHOLD:-20s}
# shellcheck disable=SC2086 # E2E_FLAGS is a list of flags
${GO:-go} test ${E2E_FLAGS:--count=1 -v -timeout 30m} ./test/e2e/...

# As on the local cluster: Berth's components must never have been denied
# anything under the RBAC of manifests/.
if kubectl -n berth-system logs -l app.kubernetes.io/part-of=berth --all-containers --prefix --tail=-1 | grep -i forbidden; then
	echo "a Berth component was denied access: manifests/ RBAC is missing a permission" >&2
	exit 1
fi
