package nodefailover

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/component-base/metrics/testutil"
	"k8s.io/utils/ptr"

	"github.com/berth-dev/berth/pkg/nodefailover"
	"github.com/berth-dev/berth/pkg/nodefailover/policy"
	"github.com/berth-dev/berth/test/integration/framework"
)

// counter reads one series of a counter vector from legacyregistry (0 if
// it has not been incremented yet).
func counter(t *testing.T, name, label, value string) float64 {
	nodefailover.RegisterMetrics()
	vals, err := testutil.GetCounterValuesFromGatherer(legacyregistry.DefaultGatherer, name, map[string]string{}, label)
	if err != nil && strings.Contains(err.Error(), "not found") {
		return 0
	}
	require.NoError(t, err)
	return vals[value]
}

func failovers(t *testing.T, result string) float64 {
	return counter(t, "berth_failovers_total", "result", result)
}

func blocked(t *testing.T, gate policy.Gate) float64 {
	return counter(t, "berth_failover_blocked_total", "gate", string(gate))
}

// replacement returns the sample count and sum of
// berth_failover_replacement_seconds.
func replacement(t *testing.T) (uint64, float64) {
	vec, err := testutil.GetHistogramVecFromGatherer(legacyregistry.DefaultGatherer, "berth_failover_replacement_seconds", map[string]string{})
	if err != nil {
		return 0, 0 // not observed yet
	}
	var n uint64
	var sum float64
	for _, h := range vec {
		n += h.GetSampleCount()
		sum += h.GetSampleSum()
	}
	return n, sum
}

// TestFailoverOfAStatefulSetReplica: a 3-replica StatefulSet on local PVs
// over 5 nodes; one node's kubelet stops; the node lifecycle controller
// marks it Unknown; 2s later the failover controller retains the old PV,
// deletes the claim and the pod; the StatefulSet controller recreates both;
// berth-scheduler places the pod on a free node with a free PV; the new
// claim is handed off. It measures NotReady → replacement Running.
func TestFailoverOfAStatefulSetReplica(t *testing.T) {
	s := newScenario(t, scenarioOptions{classAnnotations: optedIn()})
	completed := failovers(t, nodefailover.ResultCompleted)
	observed, sum := replacement(t)
	s.startFailover(nil)
	v := s.victim(1)
	others := []victim{s.victim(0), s.victim(2)}

	notReady := s.killNode(v.node)
	node, err := s.e.Client.CoreV1().Nodes().Get(s.e.Ctx, v.node, metav1.GetOptions{})
	require.NoError(t, err)
	transition := policy.ReadyCondition(node).LastTransitionTime.Time

	pod, running := s.waitForReplacement(v)
	latency := running.Sub(notReady)
	t.Logf("failover latency: node seen NotReady -> replacement pod Running = %v; minus the %v threshold = %v (Ready lastTransitionTime %s, second precision; replacement on %s)",
		latency.Round(time.Millisecond), threshold, (latency - threshold).Round(time.Millisecond), transition.Format(time.RFC3339), pod.Spec.NodeName)
	assert.Less(t, latency-threshold, 5*time.Second, "replacement Running within 5s after the threshold")

	s.checkFailedOver(v)
	for _, o := range others {
		p, c := s.pod(o.ordinal), s.claim(o.ordinal)
		assert.Equal(t, o.podUID, p.UID, "other replicas keep their pods")
		assert.Equal(t, o.claimUID, c.UID, "other replicas keep their claims")
	}
	s.e.WaitForStatefulSetReady(s.set)
	assert.Equal(t, completed+1, failovers(t, nodefailover.ResultCompleted))
	observedNow, sumNow := replacement(t)
	assert.Equal(t, observed+1, observedNow, "berth_failover_replacement_seconds observed")
	t.Logf("berth_failover_replacement_seconds observed %.3fs (from the whole-second lastTransitionTime, so up to 1s more than the real time)", sumNow-sum)

	// The node coming back later changes nothing: the new replica stays.
	s.e.ResumeNode(v.node)
	s.e.WaitForNodeCondition(v.node, v1.NodeReady, v1.ConditionTrue)
	assert.Equal(t, pod.UID, s.pod(v.ordinal).UID)
}

// TestNodeReturnsBeforeThreshold: the node is back before the threshold:
// nothing is touched.
func TestNodeReturnsBeforeThreshold(t *testing.T) {
	s := newScenario(t, scenarioOptions{classAnnotations: optedIn()})
	const longer = 6 * time.Second
	s.startFailover(func(c *nodefailover.Config) { c.NodeDeadThreshold = longer })
	v := s.victim(1)
	s.killNode(v.node)
	s.e.ResumeNode(v.node)
	s.e.WaitForNodeCondition(v.node, v1.NodeReady, v1.ConditionTrue)
	s.checkUntouched(v, longer+2*time.Second)
	s.noEventsFromController()
	pv, err := s.e.Client.CoreV1().PersistentVolumes().Get(s.e.Ctx, v.pv, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, v1.PersistentVolumeReclaimDelete, pv.Spec.PersistentVolumeReclaimPolicy)
	assert.Empty(t, pv.Annotations[policy.AnnFailoverPhase])
}

// TestLargeOutageBlocksEverything: two of six nodes (five plus the node
// lifecycle sentinel) go dark, more than --max-unready-fraction 0.3:
// nothing fails over. When one comes back, the other fails over.
func TestLargeOutageBlocksEverything(t *testing.T) {
	s := newScenario(t, scenarioOptions{classAnnotations: optedIn()})
	before := blocked(t, policy.GateOutage)
	s.startFailover(nil)
	v1_, v2 := s.victim(1), s.victim(2)
	s.e.StopNode(v1_.node)
	s.e.StopNode(v2.node)
	s.e.WaitForNodeCondition(v1_.node, v1.NodeReady, v1.ConditionUnknown)
	s.e.WaitForNodeCondition(v2.node, v1.NodeReady, v1.ConditionUnknown)

	s.waitSkipped("large outage")
	s.e.WaitForEvent(framework.EventQuery{Namespace: "default", Kind: "Node", Reason: policy.ReasonSkipped})
	s.checkUntouched(v1_, threshold+time.Second)
	s.checkUntouched(v2, 0)
	assert.Greater(t, blocked(t, policy.GateOutage), before)

	s.e.ResumeNode(v2.node)
	s.e.WaitForNodeCondition(v2.node, v1.NodeReady, v1.ConditionTrue)
	s.waitForReplacement(v1_)
	s.checkFailedOver(v1_)
	assert.Equal(t, v2.podUID, s.pod(v2.ordinal).UID)
}

// TestNoHealthyPeer: a single replica has no other Ready replica: blocked,
// until the class allows failing over without one.
func TestNoHealthyPeer(t *testing.T) {
	s := newScenario(t, scenarioOptions{classAnnotations: optedIn(), replicas: 1})
	before := blocked(t, policy.GatePeer)
	s.startFailover(nil)
	v := s.victim(0)
	s.killNode(v.node)
	s.waitSkipped("no other Ready replica")
	s.checkUntouched(v, 2*time.Second)
	assert.Greater(t, blocked(t, policy.GatePeer), before)

	sc, err := s.e.Client.StorageV1().StorageClasses().Get(s.e.Ctx, s.class, metav1.GetOptions{})
	require.NoError(t, err)
	sc.Annotations[policy.AnnFailoverWithoutHealthyPeer] = "true"
	_, err = s.e.Client.StorageV1().StorageClasses().Update(s.e.Ctx, sc, metav1.UpdateOptions{})
	require.NoError(t, err)
	s.waitForReplacement(v)
	s.checkFailedOver(v)
}

// TestPause: the pause annotation on the node, then on the namespace, then
// on the StatefulSet holds the failover; removing it lets it go.
func TestPause(t *testing.T) {
	s := newScenario(t, scenarioOptions{classAnnotations: optedIn()})
	v := s.victim(1)
	patch := []byte(`{"metadata":{"annotations":{"` + policy.AnnFailoverPaused + `":"true"}}}`)
	unpatch := []byte(`{"metadata":{"annotations":{"` + policy.AnnFailoverPaused + `":null}}}`)
	_, err := s.e.Client.CoreV1().Nodes().Patch(s.e.Ctx, v.node, types.MergePatchType, patch, metav1.PatchOptions{})
	require.NoError(t, err)
	s.startFailover(nil)
	s.killNode(v.node)
	s.waitSkipped("Node " + v.node + " has " + policy.AnnFailoverPaused)
	s.checkUntouched(v, threshold)

	_, err = s.e.Client.CoreV1().Namespaces().Patch(s.e.Ctx, s.e.Namespace, types.MergePatchType, patch, metav1.PatchOptions{})
	require.NoError(t, err)
	_, err = s.e.Client.CoreV1().Nodes().Patch(s.e.Ctx, v.node, types.MergePatchType, unpatch, metav1.PatchOptions{})
	require.NoError(t, err)
	s.waitSkipped("Namespace " + s.e.Namespace + " has")

	_, err = s.e.Client.AppsV1().StatefulSets(s.e.Namespace).Patch(s.e.Ctx, s.set, types.MergePatchType, patch, metav1.PatchOptions{})
	require.NoError(t, err)
	_, err = s.e.Client.CoreV1().Namespaces().Patch(s.e.Ctx, s.e.Namespace, types.MergePatchType, unpatch, metav1.PatchOptions{})
	require.NoError(t, err)
	s.waitSkipped("StatefulSet " + s.e.Namespace + "/" + s.set + " has")
	s.checkUntouched(v, time.Second)

	_, err = s.e.Client.AppsV1().StatefulSets(s.e.Namespace).Patch(s.e.Ctx, s.set, types.MergePatchType, unpatch, metav1.PatchOptions{})
	require.NoError(t, err)
	s.waitForReplacement(v)
	s.checkFailedOver(v)
}

// TestDryRun: events and logs, no change.
func TestDryRun(t *testing.T) {
	s := newScenario(t, scenarioOptions{classAnnotations: optedIn()})
	before := failovers(t, nodefailover.ResultDryRun)
	s.startFailover(func(c *nodefailover.Config) { c.DryRun = true })
	v := s.victim(1)
	s.killNode(v.node)
	ev := s.e.WaitForEvent(framework.EventQuery{Namespace: s.e.Namespace, Kind: "StatefulSet", Name: s.set, Reason: policy.ReasonDryRun})
	assert.Contains(t, ev.Message, v.pv)
	assert.Contains(t, ev.Message, s.claimName(1))
	s.checkUntouched(v, threshold+time.Second)
	pv, err := s.e.Client.CoreV1().PersistentVolumes().Get(s.e.Ctx, v.pv, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, v1.PersistentVolumeReclaimDelete, pv.Spec.PersistentVolumeReclaimPolicy, "dry run changes nothing")
	assert.Empty(t, pv.Annotations[policy.AnnFailedOverClaim])
	assert.Empty(t, s.pod(1).Annotations[policy.AnnFailoverPhase])
	assert.Equal(t, before+1, failovers(t, nodefailover.ResultDryRun))
}

// TestNodeDeleted: a deleted Node counts at once, whatever the threshold.
func TestNodeDeleted(t *testing.T) {
	s := newScenario(t, scenarioOptions{classAnnotations: optedIn()})
	s.startFailover(func(c *nodefailover.Config) { c.NodeDeadThreshold = time.Hour })
	v := s.victim(1)
	s.e.StopNode(v.node)
	require.NoError(t, s.e.Client.CoreV1().Nodes().Delete(s.e.Ctx, v.node, metav1.DeleteOptions{}))
	deleted := time.Now()
	_, running := s.waitForReplacement(v)
	t.Logf("failover latency after node deletion: %v", running.Sub(deleted).Round(time.Millisecond))
	s.checkFailedOver(v)
}

// TestOutOfServiceTaint: a NotReady node tainted out-of-service by an
// administrator counts at once, whatever the threshold.
func TestOutOfServiceTaint(t *testing.T) {
	s := newScenario(t, scenarioOptions{classAnnotations: optedIn()})
	s.startFailover(func(c *nodefailover.Config) { c.NodeDeadThreshold = time.Hour })
	v := s.victim(1)
	s.killNode(v.node)
	s.checkUntouched(v, time.Second) // not dead yet: 1h threshold

	node, err := s.e.Client.CoreV1().Nodes().Get(s.e.Ctx, v.node, metav1.GetOptions{})
	require.NoError(t, err)
	node.Spec.Taints = append(node.Spec.Taints, v1.Taint{Key: v1.TaintNodeOutOfService, Value: "nodeshutdown", Effect: v1.TaintEffectNoExecute})
	_, err = s.e.Client.CoreV1().Nodes().Update(s.e.Ctx, node, metav1.UpdateOptions{})
	require.NoError(t, err)
	tainted := time.Now()
	_, running := s.waitForReplacement(v)
	t.Logf("failover latency after the out-of-service taint: %v", running.Sub(tainted).Round(time.Millisecond))
	s.checkFailedOver(v)
}

// TestRestartMidFailover: the controller "crashes" between two steps; a
// new instance finishes the failover exactly once (the old claim is
// deleted once, the recreated claim never).
func TestRestartMidFailover(t *testing.T) {
	for _, step := range []nodefailover.Step{nodefailover.StepPodMarked, nodefailover.StepClaimDeleted, nodefailover.StepPodDeleted} {
		t.Run(string(step), func(t *testing.T) {
			s := newScenario(t, scenarioOptions{classAnnotations: optedIn()})
			crashed, unblock := make(chan struct{}), make(chan struct{})
			first := s.startFailover(func(c *nodefailover.Config) {
				c.Hooks = &nodefailover.Hooks{AfterStep: func(got nodefailover.Step, _ *v1.Pod) error {
					if got != step {
						return nil
					}
					close(crashed)
					<-unblock
					return errors.New("simulated crash")
				}}
			})
			v := s.victim(1)
			s.killNode(v.node)
			select {
			case <-crashed:
			case <-time.After(s.e.Timeout):
				t.Fatalf("the failover never reached step %s", step)
			}
			first.cancel() // every later API call of the first instance fails
			close(unblock)
			first.stop()

			// The state the crash left behind.
			switch step {
			case nodefailover.StepPodMarked:
				assert.Equal(t, policy.PodPhaseStarted, s.pod(1).Annotations[policy.AnnFailoverPhase])
				assert.Equal(t, v.claimUID, s.claim(1).UID)
				assert.Nil(t, s.claim(1).DeletionTimestamp)
			case nodefailover.StepClaimDeleted:
				assert.Equal(t, policy.PodPhaseStarted, s.pod(1).Annotations[policy.AnnFailoverPhase])
				c := s.claim(1)
				assert.Equal(t, v.claimUID, c.UID)
				assert.NotNil(t, c.DeletionTimestamp, "the claim is Terminating: the pod still uses it")
			case nodefailover.StepPodDeleted:
				// The StatefulSet controller recreates pod and claim, but no
				// one annotates the claim until the controller is back.
				claim := s.e.WaitForPVC(s.claimName(1), "recreated", func(c *v1.PersistentVolumeClaim) bool { return c.UID != v.claimUID })
				assert.Empty(t, claim.Annotations[policy.AnnFailedOverFromPV])
			}
			assert.LessOrEqual(t, s.deletes.get(s.claimName(1)), 1)

			s.startFailover(nil)
			s.waitForReplacement(v)
			s.checkFailedOver(v) // includes: the old claim deleted exactly once
			newClaim := s.claim(1)
			s.checkClaimStays(newClaim.UID, 2*time.Second)
		})
	}
}

// checkClaimStays asserts that the claim of replica 1 keeps its UID.
func (s *scenario) checkClaimStays(uid types.UID, d time.Duration) {
	s.e.Consistently("the recreated claim is never deleted", d, func(ctx context.Context) (bool, error) {
		c, err := s.e.Client.CoreV1().PersistentVolumeClaims(s.e.Namespace).Get(ctx, s.claimName(1), metav1.GetOptions{})
		return err == nil && c.UID == uid && c.DeletionTimestamp == nil, err
	})
}

// TestNotOptedInIsUntouched: a class without berth.dev/failover is never
// touched, however long the node is dead.
func TestNotOptedInIsUntouched(t *testing.T) {
	s := newScenario(t, scenarioOptions{})
	s.startFailover(nil)
	v := s.victim(1)
	s.killNode(v.node)
	s.checkUntouched(v, threshold+3*time.Second)
	s.noEventsFromController()
	pv, err := s.e.Client.CoreV1().PersistentVolumes().Get(s.e.Ctx, v.pv, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, v1.PersistentVolumeReclaimDelete, pv.Spec.PersistentVolumeReclaimPolicy)
	for k := range pv.Annotations {
		assert.NotContains(t, k, "berth.dev/", "PV annotations untouched")
	}
	assert.Empty(t, s.pod(1).Annotations[policy.AnnFailoverPhase])
}

// TestOwnerOptIn: the StatefulSet opts in, the class does not.
func TestOwnerOptIn(t *testing.T) {
	s := newScenario(t, scenarioOptions{setAnnotations: optedIn()})
	s.startFailover(nil)
	v := s.victim(2)
	s.killNode(v.node)
	s.waitForReplacement(v)
	s.checkFailedOver(v)
}

// waitStranded waits until the owner has recreated replica v.ordinal as an
// unscheduled pod (its claim still pinned to the dead node) and returns it.
func (s *scenario) waitStranded(v victim) *v1.Pod {
	return s.e.WaitForPod(s.podName(v.ordinal), "recreated and stranded (unschedulable)", func(p *v1.Pod) bool {
		c := framework.PodCondition(p, v1.PodScheduled)
		return p.UID != v.podUID && p.Spec.NodeName == "" && c != nil && c.Status == v1.ConditionFalse
	})
}

// TestStrandedPodAfterForceDelete: an administrator force-deletes the pod
// of a dead node before the threshold; the StatefulSet recreates it and it
// is stranded, Pending on a claim pinned to the dead node
// (kubernetes#78756). After the threshold the controller fails the stranded
// pod over. The controller starts once the pod is stranded: the threshold
// counts from the node's NotReady transition, and a controller already
// running could fail the recreated pod over before the scheduler has marked
// it unschedulable, so the stranded state would never be observed.
func TestStrandedPodAfterForceDelete(t *testing.T) {
	s := newScenario(t, scenarioOptions{classAnnotations: optedIn()})
	v := s.victim(1)
	s.killNode(v.node)
	require.NoError(t, s.e.Client.CoreV1().Pods(s.e.Namespace).Delete(s.e.Ctx, s.podName(1), metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
	stranded := s.waitStranded(v)
	s.startFailover(func(c *nodefailover.Config) { c.NodeDeadThreshold = 6 * time.Second })
	assert.Equal(t, v.claimUID, s.claim(1).UID, "the stranded pod still has the old claim")
	p, _ := s.waitForReplacement(v)
	// The replacement is either the stranded pod itself (once its old claim
	// is deleted the StatefulSet controller recreates the claim for the
	// Pending pod and the scheduler places it) or a pod recreated after the
	// controller deleted the stranded one; both leave the old claim behind.
	t.Logf("replacement pod %s (stranded pod was %s)", p.UID, stranded.UID)
	s.checkFailedOver(v)
}

// TestStrandedPodAfterNodeDeletedWhileControllerDown: the node is deleted
// while the controller is not running; the pod GC deletes its pod and the
// StatefulSet recreates it, stranded. A controller started afterwards has
// never seen the node (it does not know its name, only the hostname its
// volume is pinned to) and still fails the pod over.
func TestStrandedPodAfterNodeDeletedWhileControllerDown(t *testing.T) {
	s := newScenario(t, scenarioOptions{classAnnotations: optedIn()})
	v := s.victim(1)
	var host string
	for _, n := range s.nodes {
		if n.Name == v.node {
			host = framework.Hostname(n)
		}
	}
	v.fromNode = host
	s.e.StopNode(v.node)
	require.NoError(t, s.e.Client.CoreV1().Nodes().Delete(s.e.Ctx, v.node, metav1.DeleteOptions{}))
	s.waitStranded(v)
	s.startFailover(func(c *nodefailover.Config) { c.NodeDeadThreshold = time.Hour })
	s.waitForReplacement(v)
	s.checkFailedOver(v)
}
