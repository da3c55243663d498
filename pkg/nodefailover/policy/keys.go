// Package policy holds the pure decisions of the node failover controller:
// whether a node is dead, whether a volume is pinned to it, whether a pod
// and its claims are opted in, and the safety gates that must all agree
// before anything is deleted. Nothing here talks to the API server; every
// function works on plain inputs so that it can be table-tested.
package policy

// Annotation keys read by the controller (set by users on StorageClasses,
// owners, namespaces and nodes).
const (
	// AnnFailover opts claims in: on a StorageClass, or on the pod's owner
	// (the StatefulSet, or the controller owner object). Value "enabled".
	AnnFailover = "berth.dev/failover"
	// FailoverEnabled is the value of AnnFailover that opts in.
	FailoverEnabled = "enabled"
	// AnnFailoverThreshold on a StorageClass overrides --node-dead-threshold
	// for its claims (a Go duration, e.g. "90s").
	AnnFailoverThreshold = "berth.dev/failover-threshold"
	// AnnFailoverBudget on the owner overrides --max-failovers-per-owner (a
	// non-negative integer; 0 blocks failover for the owner).
	AnnFailoverBudget = "berth.dev/failover-budget"
	// AnnFailoverWithoutHealthyPeer "true" on a StorageClass lets its claims
	// fail over even when the owner has no other Ready replica.
	AnnFailoverWithoutHealthyPeer = "berth.dev/failover-without-healthy-peer"
	// AnnFailoverPaused "true" on a node, a namespace or an owner skips
	// everything it covers.
	AnnFailoverPaused = "berth.dev/failover-paused"
)

// Annotation keys written by the controller: the hand-off contract with the
// database operator, and the progress record that makes the controller
// crash-safe.
const (
	// AnnFailedOverFromNode is the dead node's name, on the old PV and on
	// the recreated claim.
	AnnFailedOverFromNode = "berth.dev/failed-over-from-node"
	// AnnFailedOverAt is when the failover of the claim started (RFC3339),
	// on the old PV and on the recreated claim.
	AnnFailedOverAt = "berth.dev/failed-over-at"
	// AnnFailedOverClaim is "<namespace>/<name>/<uid>" of the deleted claim,
	// on the old PV.
	AnnFailedOverClaim = "berth.dev/failed-over-claim"
	// AnnFailedOverFromPV is the old PV's name, on the recreated claim.
	AnnFailedOverFromPV = "berth.dev/failed-over-from-pv"
	// AnnFailedOverToClaimUID is the UID of the recreated claim, on the old
	// PV, once the hand-off annotation has been written.
	AnnFailedOverToClaimUID = "berth.dev/failed-over-to-claim-uid"

	// AnnFailoverPhase is the progress of a failover: on the pod (PodPhase*
	// values) while the pod exists, and on the old PV (PVPhase* values).
	AnnFailoverPhase = "berth.dev/failover-phase"
	// AnnFailoverPod is "<namespace>/<name>/<uid>" of the failed-over pod,
	// on the old PV.
	AnnFailoverPod = "berth.dev/failover-pod"
	// AnnFailoverOwner is the owner key (see OwnerKey) of the failed-over
	// pod, on the old PV; the per-owner budget counts these.
	AnnFailoverOwner = "berth.dev/failover-owner"
	// AnnFailoverNodeNotReadySince is when the node stopped being Ready
	// (RFC3339Nano), on the old PV: the start of the replacement latency.
	AnnFailoverNodeNotReadySince = "berth.dev/failover-node-not-ready-since"
)

// Phases of a failover as recorded on the pod (AnnFailoverPhase).
const (
	// PodPhaseStarted: gates passed, claims are being deleted.
	PodPhaseStarted = "Started"
	// PodPhaseClaimsDeleted: every pinned claim is deleted (Terminating or
	// gone); the pod is next.
	PodPhaseClaimsDeleted = "ClaimsDeleted"
	// PodPhaseAborted: the node came back before the pod was deleted.
	PodPhaseAborted = "Aborted"
)

// Phases of a failover as recorded on the old PV (AnnFailoverPhase).
const (
	// PVPhaseInProgress: the PV is retained and annotated; its claim is
	// being (or has been) deleted and not yet recreated.
	PVPhaseInProgress = "InProgress"
	// PVPhaseHandedOff: the recreated claim carries the hand-off
	// annotations; waiting for the replacement pod to run.
	PVPhaseHandedOff = "HandedOff"
	// PVPhaseCompleted: the replacement pod is Running.
	PVPhaseCompleted = "Completed"
	// PVPhaseAborted: the node came back before the claim was deleted; the
	// claim and the pod were left alone.
	PVPhaseAborted = "Aborted"
)

// PVPhaseActive reports whether a PV phase is a failover still in flight
// (it counts against the owner's budget).
func PVPhaseActive(phase string) bool {
	return phase == PVPhaseInProgress || phase == PVPhaseHandedOff
}

// PodPhaseActive reports whether a pod phase is a failover in flight.
func PodPhaseActive(phase string) bool {
	return phase == PodPhaseStarted || phase == PodPhaseClaimsDeleted
}

// Event reasons.
const (
	ReasonStarted   = "BerthFailoverStarted"
	ReasonCompleted = "BerthFailoverCompleted"
	ReasonSkipped   = "BerthFailoverSkipped"
	ReasonAborted   = "BerthFailoverAborted"
	ReasonHandOff   = "BerthFailoverHandOff"
	ReasonFailed    = "BerthFailoverFailed"
	ReasonDryRun    = "BerthFailoverDryRun"
)
