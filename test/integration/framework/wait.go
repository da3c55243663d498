package framework

import (
	"context"
	"fmt"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
)

// PollInterval is how often the Wait* helpers poll the API server.
const PollInterval = 100 * time.Millisecond

// Poll polls cond every PollInterval until it returns true (nil), returns an
// error (that error), or timeout passes (a timeout error). It does not fail
// the test, so it can be used from other goroutines.
func (e *Env) Poll(timeout time.Duration, cond func(ctx context.Context) (bool, error)) error {
	return wait.PollUntilContextTimeout(e.Ctx, PollInterval, timeout, true, cond)
}

// Eventually waits until cond returns true within e.Timeout, failing the
// test (naming what) if it returns an error or time runs out.
func (e *Env) Eventually(what string, cond func(ctx context.Context) (bool, error)) {
	e.T.Helper()
	start := time.Now()
	err := e.Poll(e.Timeout, cond)
	require.NoError(e.T, err, "waiting for %s (gave up after %v)", what, time.Since(start).Round(time.Millisecond))
}

// Consistently checks that cond stays true for d, polling every
// PollInterval, failing the test at the first false or error. Use it for
// negative assertions ("the pod stays pending").
func (e *Env) Consistently(what string, d time.Duration, cond func(ctx context.Context) (bool, error)) {
	e.T.Helper()
	var lastErr error
	ok := true
	err := wait.PollUntilContextTimeout(e.Ctx, PollInterval, d, true, func(context.Context) (bool, error) {
		// cond gets the test's context, not the poll's: the latter expires
		// at the end of the window, which is success, not an error of cond.
		good, err := cond(e.Ctx)
		if err != nil || !good {
			ok, lastErr = false, err
			return true, nil
		}
		return false, nil
	})
	require.True(e.T, ok, "expected %s to hold for %v; it stopped holding (err: %v)", what, d, lastErr)
	if err != nil && !wait.Interrupted(err) {
		require.NoError(e.T, err, "checking %s", what)
	}
}

// WaitForPod waits until the pod satisfies cond (described by what) and
// returns it.
func (e *Env) WaitForPod(name, what string, cond func(*v1.Pod) bool) *v1.Pod {
	e.T.Helper()
	var pod *v1.Pod
	e.Eventually(fmt.Sprintf("pod %s/%s: %s", e.Namespace, name, what), func(ctx context.Context) (bool, error) {
		p, err := e.Client.CoreV1().Pods(e.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, ignoreNotFound(err)
		}
		pod = p
		return cond(p), nil
	})
	return pod
}

// WaitForPodScheduled waits until the pod is bound to a node and returns it
// (pod.Spec.NodeName is the node).
func (e *Env) WaitForPodScheduled(name string) *v1.Pod {
	e.T.Helper()
	return e.WaitForPod(name, "scheduled", func(p *v1.Pod) bool { return p.Spec.NodeName != "" })
}

// WaitForPodScheduledTo waits until the pod is bound and asserts that it is
// bound to nodeName.
func (e *Env) WaitForPodScheduledTo(name, nodeName string) *v1.Pod {
	e.T.Helper()
	pod := e.WaitForPodScheduled(name)
	require.Equal(e.T, nodeName, pod.Spec.NodeName, "node of pod %s/%s", e.Namespace, name)
	return pod
}

// WaitForPodUnschedulable waits until the scheduler reported the pod
// unschedulable (PodScheduled=False, reason Unschedulable) and returns it.
func (e *Env) WaitForPodUnschedulable(name string) *v1.Pod {
	e.T.Helper()
	return e.WaitForPod(name, "unschedulable", func(p *v1.Pod) bool {
		c := PodCondition(p, v1.PodScheduled)
		return c != nil && c.Status == v1.ConditionFalse && c.Reason == v1.PodReasonUnschedulable
	})
}

// WaitForPodRunning waits until the pod is Running and Ready (the simulated
// kubelet does this for pods on its live nodes).
func (e *Env) WaitForPodRunning(name string) *v1.Pod {
	e.T.Helper()
	return e.WaitForPod(name, "running and ready", func(p *v1.Pod) bool {
		c := PodCondition(p, v1.PodReady)
		return p.Status.Phase == v1.PodRunning && c != nil && c.Status == v1.ConditionTrue
	})
}

// WaitForPodDeleted waits until the pod is gone.
func (e *Env) WaitForPodDeleted(name string) {
	e.T.Helper()
	e.Eventually(fmt.Sprintf("pod %s/%s deleted", e.Namespace, name), func(ctx context.Context) (bool, error) {
		_, err := e.Client.CoreV1().Pods(e.Namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

// WaitForPVC waits until the claim satisfies cond and returns it.
func (e *Env) WaitForPVC(name, what string, cond func(*v1.PersistentVolumeClaim) bool) *v1.PersistentVolumeClaim {
	e.T.Helper()
	var pvc *v1.PersistentVolumeClaim
	e.Eventually(fmt.Sprintf("claim %s/%s: %s", e.Namespace, name, what), func(ctx context.Context) (bool, error) {
		c, err := e.Client.CoreV1().PersistentVolumeClaims(e.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, ignoreNotFound(err)
		}
		pvc = c
		return cond(c), nil
	})
	return pvc
}

// WaitForPVCBound waits until the claim is Bound and returns it
// (pvc.Spec.VolumeName is the volume).
func (e *Env) WaitForPVCBound(name string) *v1.PersistentVolumeClaim {
	e.T.Helper()
	return e.WaitForPVC(name, "bound", func(c *v1.PersistentVolumeClaim) bool {
		return c.Status.Phase == v1.ClaimBound && c.Spec.VolumeName != ""
	})
}

// WaitForPVCBoundTo waits until the claim is Bound and asserts its volume.
func (e *Env) WaitForPVCBoundTo(name, pvName string) *v1.PersistentVolumeClaim {
	e.T.Helper()
	pvc := e.WaitForPVCBound(name)
	require.Equal(e.T, pvName, pvc.Spec.VolumeName, "volume of claim %s/%s", e.Namespace, name)
	return pvc
}

// WaitForPV waits until the volume satisfies cond and returns it.
func (e *Env) WaitForPV(name, what string, cond func(*v1.PersistentVolume) bool) *v1.PersistentVolume {
	e.T.Helper()
	var pv *v1.PersistentVolume
	e.Eventually(fmt.Sprintf("volume %s: %s", name, what), func(ctx context.Context) (bool, error) {
		v, err := e.Client.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, ignoreNotFound(err)
		}
		pv = v
		return cond(v), nil
	})
	return pv
}

// WaitForPVPhase waits until the volume is in phase (Available, Bound,
// Released, ...).
func (e *Env) WaitForPVPhase(name string, phase v1.PersistentVolumePhase) *v1.PersistentVolume {
	e.T.Helper()
	return e.WaitForPV(name, "phase "+string(phase), func(v *v1.PersistentVolume) bool { return v.Status.Phase == phase })
}

// WaitForNode waits until the node satisfies cond and returns it.
func (e *Env) WaitForNode(name, what string, cond func(*v1.Node) bool) *v1.Node {
	e.T.Helper()
	var node *v1.Node
	e.Eventually(fmt.Sprintf("node %s: %s", name, what), func(ctx context.Context) (bool, error) {
		n, err := e.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, ignoreNotFound(err)
		}
		node = n
		return cond(n), nil
	})
	return node
}

// WaitForNodeCondition waits until the node's condition t has status s
// (e.g. NodeReady Unknown after its kubelet stopped).
func (e *Env) WaitForNodeCondition(name string, t v1.NodeConditionType, s v1.ConditionStatus) *v1.Node {
	e.T.Helper()
	return e.WaitForNode(name, fmt.Sprintf("%s=%s", t, s), func(n *v1.Node) bool { return NodeConditionStatus(n, t) == s })
}

// WaitForNodeTaint waits until the node has a taint with key and effect.
func (e *Env) WaitForNodeTaint(name, key string, effect v1.TaintEffect) *v1.Node {
	e.T.Helper()
	return e.WaitForNode(name, fmt.Sprintf("taint %s:%s", key, effect), func(n *v1.Node) bool { return HasTaint(n, key, effect) })
}

// WaitForNodeNoTaint waits until the node no longer has a taint with key
// and effect.
func (e *Env) WaitForNodeNoTaint(name, key string, effect v1.TaintEffect) *v1.Node {
	e.T.Helper()
	return e.WaitForNode(name, fmt.Sprintf("no taint %s:%s", key, effect), func(n *v1.Node) bool { return !HasTaint(n, key, effect) })
}

// WaitForStatefulSetReady waits until all the set's replicas are ready.
func (e *Env) WaitForStatefulSetReady(name string) *appsv1.StatefulSet {
	e.T.Helper()
	var set *appsv1.StatefulSet
	e.Eventually(fmt.Sprintf("StatefulSet %s/%s ready", e.Namespace, name), func(ctx context.Context) (bool, error) {
		s, err := e.Client.AppsV1().StatefulSets(e.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, ignoreNotFound(err)
		}
		set = s
		want := int32(1)
		if s.Spec.Replicas != nil {
			want = *s.Spec.Replicas
		}
		return s.Status.ObservedGeneration >= s.Generation && s.Status.ReadyReplicas == want && s.Status.Replicas == want, nil
	})
	return set
}

// EventQuery selects events. Empty fields match anything.
type EventQuery struct {
	// Namespace of the event: the involved object's namespace, or
	// "default" for cluster-scoped objects such as nodes and PVs.
	Namespace string
	// Kind and Name of the involved object.
	Kind, Name string
	// Reason of the event (e.g. "FailedScheduling", "Scheduled").
	Reason string
}

// WaitForEvent waits for an event matching q (core/v1 events; the
// scheduler's events.k8s.io events show up there too) and returns it.
func (e *Env) WaitForEvent(q EventQuery) *v1.Event {
	e.T.Helper()
	var found *v1.Event
	e.Eventually(fmt.Sprintf("event %+v", q), func(ctx context.Context) (bool, error) {
		list, err := e.Client.CoreV1().Events(q.Namespace).List(ctx, metav1.ListOptions{FieldSelector: q.fieldSelector()})
		if err != nil {
			return false, err
		}
		if len(list.Items) == 0 {
			return false, nil
		}
		found = &list.Items[len(list.Items)-1]
		return true, nil
	})
	return found
}

// WaitForPodEvent waits for an event with reason about a pod of the Env's
// namespace.
func (e *Env) WaitForPodEvent(podName, reason string) *v1.Event {
	e.T.Helper()
	return e.WaitForEvent(EventQuery{Namespace: e.Namespace, Kind: "Pod", Name: podName, Reason: reason})
}

// Events lists the events matching q (for assertions on absence or count).
func (e *Env) Events(q EventQuery) []v1.Event {
	e.T.Helper()
	list, err := e.Client.CoreV1().Events(q.Namespace).List(e.Ctx, metav1.ListOptions{FieldSelector: q.fieldSelector()})
	require.NoError(e.T, err, "listing events %+v", q)
	return list.Items
}

func (q EventQuery) fieldSelector() string {
	set := fields.Set{}
	if q.Kind != "" {
		set["involvedObject.kind"] = q.Kind
	}
	if q.Name != "" {
		set["involvedObject.name"] = q.Name
	}
	if q.Reason != "" {
		set["reason"] = q.Reason
	}
	return fields.SelectorFromSet(set).String()
}

// PodCondition returns the pod's condition of type t, or nil.
func PodCondition(p *v1.Pod, t v1.PodConditionType) *v1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}
