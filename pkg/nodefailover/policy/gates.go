package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
)

// Gate names a safety gate; it is the label of berth_failover_blocked_total.
type Gate string

const (
	// GateOutage: too many nodes are not Ready; the problem is likely the
	// network or the control plane, not the nodes.
	GateOutage Gate = "outage"
	// GateBudget: the owner already has its budget of replicas in failover.
	GateBudget Gate = "budget"
	// GatePeer: the owner has no other Ready replica to serve (or to seed
	// the new volume from).
	GatePeer Gate = "peer"
	// GatePaused: a node, namespace or owner carries the pause annotation.
	GatePaused Gate = "paused"
	// GateNodeAlive: the node came back (Ready) before the action.
	GateNodeAlive Gate = "node-alive"
)

// Decision is the verdict of a gate: Allowed, or blocked by Gate for Reason.
type Decision struct {
	Allowed bool
	Gate    Gate
	Reason  string
}

// Allow is the Decision that lets the failover go ahead.
func Allow() Decision { return Decision{Allowed: true} }

func block(g Gate, format string, args ...any) Decision {
	return Decision{Gate: g, Reason: fmt.Sprintf(format, args...)}
}

// OutageGate blocks every failover when more than maxUnreadyFraction of the
// totalNodes are not Ready: a large share of nodes going dark at once is
// more likely a partition or a control-plane problem than dead machines,
// and deleting claims would destroy data that is about to come back. With
// no nodes at all there is nowhere to fail over to.
func OutageGate(totalNodes, unreadyNodes int, maxUnreadyFraction float64) Decision {
	if totalNodes <= 0 {
		return block(GateOutage, "no nodes in the cluster")
	}
	fraction := float64(unreadyNodes) / float64(totalNodes)
	if fraction > maxUnreadyFraction {
		return block(GateOutage, "%d of %d nodes are not Ready (%.0f%%), more than --max-unready-fraction %.2f: assuming a large outage",
			unreadyNodes, totalNodes, 100*fraction, maxUnreadyFraction)
	}
	return Allow()
}

// CountUnready returns how many nodes there are and how many of them are
// not Ready.
func CountUnready(nodes []*v1.Node) (total, unready int) {
	for _, n := range nodes {
		total++
		if !IsNodeReady(n) {
			unready++
		}
	}
	return total, unready
}

// BudgetGate allows a replica to start failing over only while fewer than
// budget other replicas of the same owner are in failover.
func BudgetGate(othersInFailover, budget int) Decision {
	if othersInFailover >= budget {
		return block(GateBudget, "%d other replica(s) of the owner are in failover, budget %d", othersInFailover, budget)
	}
	return Allow()
}

// PeerGate requires at least one other Ready replica of the owner, unless
// the class allows failing over without one.
func PeerGate(readyPeers int, allowWithoutPeer bool) Decision {
	if readyPeers > 0 || allowWithoutPeer {
		return Allow()
	}
	return block(GatePeer, "no other Ready replica of the owner (set %s: \"true\" on the StorageClass to fail over anyway)", AnnFailoverWithoutHealthyPeer)
}

// PauseSource is an object whose annotations may pause failover.
type PauseSource struct {
	// Kind and Name identify the object in the reason ("Node n1").
	Kind, Name  string
	Annotations map[string]string
}

// PausedGate blocks when any source carries berth.dev/failover-paused: "true".
func PausedGate(sources ...PauseSource) Decision {
	for _, s := range sources {
		if IsTrue(s.Annotations, AnnFailoverPaused) {
			return block(GatePaused, "%s %s has %s: \"true\"", s.Kind, s.Name, AnnFailoverPaused)
		}
	}
	return Allow()
}

// PodGateInput are the facts the per-pod gates decide on.
type PodGateInput struct {
	// Paused are the node, the namespace and the owner.
	Paused []PauseSource
	// OthersInFailover counts other replicas of the owner in failover.
	OthersInFailover int
	// Budget is the owner's budget (see Budget).
	Budget int
	// ReadyPeers counts other Ready replicas of the owner on Ready nodes.
	ReadyPeers int
	// AllowWithoutPeer: a class of the pod's claims allows failing over
	// without a healthy peer (see AllowWithoutHealthyPeer).
	AllowWithoutPeer bool
	// InProgress: this pod's failover already started (its claims may be
	// deleted); only the pause gate applies then: the budget already counts
	// the pod, and the peer gate was checked when it started. Stopping half
	// way would leave Terminating claims and a pod that cannot come back.
	InProgress bool
}

// EvaluatePodGates applies the per-pod gates in order: pause, budget, peer.
func EvaluatePodGates(in PodGateInput) Decision {
	if d := PausedGate(in.Paused...); !d.Allowed {
		return d
	}
	if in.InProgress {
		return Allow()
	}
	if d := BudgetGate(in.OthersInFailover, in.Budget); !d.Allowed {
		return d
	}
	return PeerGate(in.ReadyPeers, in.AllowWithoutPeer)
}

// IsTrue reports whether annotations[key] is "true" (any case).
func IsTrue(annotations map[string]string, key string) bool {
	return strings.EqualFold(strings.TrimSpace(annotations[key]), "true")
}

// OptedIn reports whether a claim is opted in: its StorageClass or the
// pod's owner has berth.dev/failover: "enabled".
func OptedIn(classAnnotations, ownerAnnotations map[string]string) bool {
	return enabled(classAnnotations) || enabled(ownerAnnotations)
}

func enabled(annotations map[string]string) bool {
	return strings.EqualFold(strings.TrimSpace(annotations[AnnFailover]), FailoverEnabled)
}

// Threshold returns the class's berth.dev/failover-threshold, or def when
// the annotation is absent. A value that is not a positive Go duration is
// an error (the caller keeps def and reports it).
func Threshold(classAnnotations map[string]string, def time.Duration) (time.Duration, error) {
	s, ok := classAnnotations[AnnFailoverThreshold]
	if !ok {
		return def, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return def, fmt.Errorf("annotation %s: %w", AnnFailoverThreshold, err)
	}
	if d <= 0 {
		return def, fmt.Errorf("annotation %s: %q must be positive", AnnFailoverThreshold, s)
	}
	return d, nil
}

// Budget returns the owner's berth.dev/failover-budget, or def when the
// annotation is absent. A value that is not a non-negative integer is an
// error (the caller keeps def and reports it).
func Budget(ownerAnnotations map[string]string, def int) (int, error) {
	s, ok := ownerAnnotations[AnnFailoverBudget]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return def, fmt.Errorf("annotation %s: %w", AnnFailoverBudget, err)
	}
	if n < 0 {
		return def, fmt.Errorf("annotation %s: %q must not be negative", AnnFailoverBudget, s)
	}
	return n, nil
}

// AllowWithoutHealthyPeer reports whether the class has
// berth.dev/failover-without-healthy-peer: "true".
func AllowWithoutHealthyPeer(classAnnotations map[string]string) bool {
	return IsTrue(classAnnotations, AnnFailoverWithoutHealthyPeer)
}

// IsPodReady reports whether the pod's Ready condition is True and it is
// not being deleted.
func IsPodReady(pod *v1.Pod) bool {
	if pod.DeletionTimestamp != nil {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == v1.PodReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

// IsPodRunning reports whether the pod is in phase Running and not being
// deleted.
func IsPodRunning(pod *v1.Pod) bool {
	return pod.DeletionTimestamp == nil && pod.Status.Phase == v1.PodRunning
}

// OwnerKey is the budget key of an owner: "<Kind>/<namespace>/<name>".
func OwnerKey(kind, namespace, name string) string {
	return kind + "/" + namespace + "/" + name
}
