package policy

import (
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
)

// NodeReason says why IsNodeDead decided as it did.
type NodeReason string

const (
	// NodeReady: the Ready condition is True.
	NodeReady NodeReason = "Ready"
	// NodeNotReadyWaiting: Ready is not True, but not yet for the threshold.
	NodeNotReadyWaiting NodeReason = "NotReadyWaiting"
	// NodeNotReadyTooLong: Ready has not been True for the threshold.
	NodeNotReadyTooLong NodeReason = "NotReadyTooLong"
	// NodeDeleted: the Node object is gone.
	NodeDeleted NodeReason = "NodeDeleted"
	// NodeOutOfService: the node is not Ready and an administrator tainted
	// it node.kubernetes.io/out-of-service (confirmed shutdown).
	NodeOutOfService NodeReason = "OutOfService"
)

// NodeVerdict is the result of IsNodeDead.
type NodeVerdict struct {
	// Dead: the node's pods may fail over (subject to the gates).
	Dead bool
	// Reason for the verdict.
	Reason NodeReason
	// NotReadySince is when the node stopped being Ready (the Ready
	// condition's lastTransitionTime, or the node's creation time if it has
	// no Ready condition); zero for a Ready or deleted node.
	NotReadySince time.Time
	// Remaining is how long until the node counts as dead, for
	// NodeNotReadyWaiting; zero otherwise.
	Remaining time.Duration
	// Message is a human-readable explanation.
	Message string
}

// TimestampPrecision is the precision of timestamps read from the API
// (metav1.Time serialises whole seconds).
const TimestampPrecision = time.Second

// IsNodeDead decides whether node is dead at now: a nil node (deleted) is
// dead at once; a node whose Ready condition is not True and that carries
// the node.kubernetes.io/out-of-service taint is dead at once (as for the
// pod GC controller, the taint only counts on a node that is not Ready:
// an administrator's word does not outweigh a kubelet that is heartbeating);
// otherwise a node is dead when its Ready condition has not been True for
// at least threshold, measured from the condition's lastTransitionTime (from
// the end of the second it names, as API timestamps are truncated to whole
// seconds: the node was certainly not Ready for the whole threshold).
// A lastTransitionTime in the future (clock skew) counts as now, so skew
// can only delay a failover, never hasten it.
func IsNodeDead(node *v1.Node, now time.Time, threshold time.Duration) NodeVerdict {
	if node == nil {
		return NodeVerdict{Dead: true, Reason: NodeDeleted, Message: "the Node object was deleted"}
	}
	ready := ReadyCondition(node)
	if ready != nil && ready.Status == v1.ConditionTrue {
		return NodeVerdict{Reason: NodeReady, Message: "node is Ready"}
	}
	var since time.Time
	status := "missing"
	if ready != nil {
		since = ready.LastTransitionTime.Time
		status = string(ready.Status)
	}
	if since.IsZero() {
		since = node.CreationTimestamp.Time
	}
	if HasOutOfServiceTaint(node) {
		return NodeVerdict{
			Dead: true, Reason: NodeOutOfService, NotReadySince: since,
			Message: fmt.Sprintf("node is not Ready (Ready=%s) and tainted %s", status, v1.TaintNodeOutOfService),
		}
	}
	// API timestamps have second precision: the condition changed at some
	// point within the second it names, so count from the end of it.
	start := since
	if start.Nanosecond() == 0 {
		start = start.Add(TimestampPrecision)
	}
	elapsed := max(now.Sub(start), 0)
	if elapsed >= threshold {
		return NodeVerdict{
			Dead: true, Reason: NodeNotReadyTooLong, NotReadySince: since,
			Message: fmt.Sprintf("node has not been Ready (Ready=%s) for %v, threshold %v", status, elapsed.Round(time.Millisecond), threshold),
		}
	}
	return NodeVerdict{
		Reason: NodeNotReadyWaiting, NotReadySince: since, Remaining: threshold - elapsed,
		Message: fmt.Sprintf("node has not been Ready (Ready=%s) for %v, threshold %v", status, elapsed.Round(time.Millisecond), threshold),
	}
}

// ReadyCondition returns the node's Ready condition, or nil.
func ReadyCondition(node *v1.Node) *v1.NodeCondition {
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == v1.NodeReady {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}

// IsNodeReady reports whether the node's Ready condition is True.
func IsNodeReady(node *v1.Node) bool {
	c := ReadyCondition(node)
	return c != nil && c.Status == v1.ConditionTrue
}

// HasOutOfServiceTaint reports whether the node carries the
// node.kubernetes.io/out-of-service taint (any effect).
func HasOutOfServiceTaint(node *v1.Node) bool {
	for _, t := range node.Spec.Taints {
		if t.Key == v1.TaintNodeOutOfService {
			return true
		}
	}
	return false
}

// Hostname returns the node's kubernetes.io/hostname label, or its name
// when the label is missing (the kubelet's default).
func Hostname(node *v1.Node) string {
	if h := node.Labels[v1.LabelHostname]; h != "" {
		return h
	}
	return node.Name
}
