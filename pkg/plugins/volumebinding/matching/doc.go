// Package matching decides which of a node's volumes a pod's unbound claims
// should take. It is pure logic with no Kubernetes API access, so it can be
// table-tested and fuzzed against a brute-force oracle.
//
// The in-tree VolumeBinding plugin sorts claims smallest first and gives each
// the smallest volume that fits. That greedy loop can fail when a feasible
// assignment exists (a small claim takes the only volume a larger, more
// selective claim could use) and it does not minimise the capacity left
// unused. Assign solves the problem exactly as a minimum-cost bipartite
// matching instead.
package matching
