package framework

import (
	"context"

	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// NodeOptions describe a node for MakeNode/CreateNode. Zero fields take the
// documented defaults.
type NodeOptions struct {
	// Name of the node (required; use Env.Name for uniqueness).
	Name string
	// Hostname is the kubernetes.io/hostname label, which local PVs pin
	// to. Default: Name. It may differ from the node name, as on clouds
	// where node names are FQDNs.
	Hostname string
	// Zone sets topology.kubernetes.io/zone when not empty.
	Zone string
	// Labels are added to the hostname (and zone) labels.
	Labels map[string]string
	// CPU, Memory, Pods and EphemeralStorage are the capacity, also used
	// as allocatable. Defaults: "8", "32Gi", "110", "100Gi".
	CPU, Memory, Pods, EphemeralStorage string
	// Taints to set at creation (the not-ready taint added by admission is
	// handled by CreateNode).
	Taints []v1.Taint
	// Unschedulable cordons the node.
	Unschedulable bool
	// Mutate, if set, edits the object last.
	Mutate func(*v1.Node)
}

// MakeNode builds a Node object (no status conditions: the simulated kubelet
// posts them).
func MakeNode(o NodeOptions) *v1.Node {
	hostname := o.Hostname
	if hostname == "" {
		hostname = o.Name
	}
	labels := map[string]string{v1.LabelHostname: hostname, v1.LabelOSStable: "linux", v1.LabelArchStable: "amd64"}
	if o.Zone != "" {
		labels[v1.LabelTopologyZone] = o.Zone
	}
	for k, v := range o.Labels {
		labels[k] = v
	}
	resources := v1.ResourceList{
		v1.ResourceCPU:              resource.MustParse(orDefault(o.CPU, "8")),
		v1.ResourceMemory:           resource.MustParse(orDefault(o.Memory, "32Gi")),
		v1.ResourcePods:             resource.MustParse(orDefault(o.Pods, "110")),
		v1.ResourceEphemeralStorage: resource.MustParse(orDefault(o.EphemeralStorage, "100Gi")),
	}
	n := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Labels: labels},
		Spec:       v1.NodeSpec{Taints: o.Taints, Unschedulable: o.Unschedulable},
		Status: v1.NodeStatus{
			Capacity:    resources,
			Allocatable: resources.DeepCopy(),
			Phase:       v1.NodeRunning,
		},
	}
	if o.Mutate != nil {
		o.Mutate(n)
	}
	return n
}

// CreateNode creates a node, registers it with the simulated kubelet (which
// posts Ready and starts renewing its Lease) and returns once the node is
// Ready without the node.kubernetes.io/not-ready taint, i.e. schedulable.
// The TaintNodesByCondition admission plugin adds that taint to every new
// node; in a real cluster the node lifecycle controller removes it once the
// node is Ready, and CreateNode does the same so that tests that do not run
// NodeLifecycle get schedulable nodes too.
func (e *Env) CreateNode(o NodeOptions) *v1.Node {
	e.T.Helper()
	require.NotEmpty(e.T, o.Name, "NodeOptions.Name")
	n := MakeNode(o)
	n.Labels[EnvLabel] = e.ID
	_, err := e.Client.CoreV1().Nodes().Create(e.Ctx, n, metav1.CreateOptions{})
	require.NoError(e.T, err, "creating node %s", o.Name)
	require.NoError(e.T, e.Kubelet.Register(e.Ctx, o.Name), "registering node %s with the simulated kubelet", o.Name)
	require.NoError(e.T, removeNotReadyTaint(e.Ctx, e, o.Name), "removing the not-ready taint of node %s", o.Name)
	return e.WaitForNode(o.Name, "Ready and untainted", func(n *v1.Node) bool {
		return NodeConditionStatus(n, v1.NodeReady) == v1.ConditionTrue && !HasTaint(n, v1.TaintNodeNotReady, v1.TaintEffectNoSchedule)
	})
}

// CreateUnregisteredNode creates a node that no simulated kubelet runs: it
// never reports Ready and keeps the not-ready taint.
func (e *Env) CreateUnregisteredNode(o NodeOptions) *v1.Node {
	e.T.Helper()
	n := MakeNode(o)
	n.Labels[EnvLabel] = e.ID
	created, err := e.Client.CoreV1().Nodes().Create(e.Ctx, n, metav1.CreateOptions{})
	require.NoError(e.T, err, "creating node %s", o.Name)
	return created
}

// StopNode stops nodeName's simulated kubelet (see simkubelet.Kubelet.Stop).
func (e *Env) StopNode(nodeName string) { e.Kubelet.Stop(nodeName) }

// ResumeNode resumes nodeName's simulated kubelet.
func (e *Env) ResumeNode(nodeName string) { e.Kubelet.Resume(nodeName) }

func removeNotReadyTaint(ctx context.Context, e *Env, name string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := e.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		kept := n.Spec.Taints[:0]
		for _, t := range n.Spec.Taints {
			if t.Key == v1.TaintNodeNotReady && t.Effect == v1.TaintEffectNoSchedule {
				continue
			}
			kept = append(kept, t)
		}
		if len(kept) == len(n.Spec.Taints) {
			return nil
		}
		n.Spec.Taints = kept
		_, err = e.Client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		return err
	})
}

// Hostname returns the node's kubernetes.io/hostname label (the value local
// PVs pin to), or its name if the label is missing.
func Hostname(n *v1.Node) string {
	if h := n.Labels[v1.LabelHostname]; h != "" {
		return h
	}
	return n.Name
}

// NodeConditionStatus returns the status of the node's condition of type t,
// or "" if it has none.
func NodeConditionStatus(n *v1.Node, t v1.NodeConditionType) v1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

// HasTaint reports whether the node has a taint with this key and effect.
func HasTaint(n *v1.Node, key string, effect v1.TaintEffect) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == key && t.Effect == effect {
			return true
		}
	}
	return false
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
