// Package perf benchmarks Berth end to end against the in-tree scheduler on
// a real, in-process control plane (embedded etcd, kube-apiserver, the real
// PV controller; see test/integration/framework).
//
// Each run starts a fresh control plane and creates one fixture: N nodes, K
// Available local PVs per node of assorted sizes, and M pods with C
// WaitForFirstConsumer claims each. It then creates the pods in bulk and
// measures, from watch events, until every pod is bound and every claim
// Bound (or a per-run time limit passes). Three modes run on identical
// fixtures:
//
//   - berth: Berth's profile, manifests/config/scheduler-config.yaml;
//   - in-tree: the in-tree default profile with VolumeBinding's scoring
//     shape [{0,0},{100,10}] (tightest fit; StorageCapacityScoring is on by
//     default in 1.37);
//   - limit: Berth's profile on the same pods with their claims already
//     Bound (pre-bound PVs and claims, bound by the PV controller before the
//     pods exist): what the API server and the rest of the scheduler allow.
//
// Metrics per run: pods/s, p50/p90/p99 latency from pod creation to "bound
// with all claims Bound", wasted capacity Σ(PV capacity − request), CPU
// seconds by component (a CPU profile of the process whose goroutines carry
// a pprof label per component), process CPU, peak heap. Each run writes
// <fixture>-<mode>.json and its CPU profile to the output directory;
// hack/perfchart turns them into a table, charts and BENCHMARKS.md.
//
// TestSmall runs a small fixture inside `go test` and checks sanity;
// TestBenchE2E runs the fixtures in BERTH_PERF_FIXTURES (`make bench-e2e`).
package perf
