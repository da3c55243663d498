package volumebinding

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/component-helpers/storage/volume"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/berth-dev/berth/pkg/apis/config"
)

// reservedCycle creates the pod in the API server and runs PreFilter,
// Filter and Reserve for it on node.
func (e *testEnv) reservedCycle(pod *v1.Pod, node string) fwk.CycleState {
	e.t.Helper()
	e.create(pod)
	e.waitFor(func() bool {
		_, err := e.pl.podLister.Pods(pod.Namespace).Get(pod.Name)
		return err == nil
	}, "pod not in the informer cache")
	r := e.cycle(pod, node)
	require.True(e.t, r.filterStatus[node].IsSuccess(), "Filter: %v", r.filterStatus[node])
	require.True(e.t, e.pl.Reserve(e.ctx, r.state, pod, node).IsSuccess())
	_, st := e.pl.PreBindPreFlight(e.ctx, r.state, pod, node)
	require.True(e.t, st.IsSuccess(), "PreBindPreFlight: %v", st)
	return r.state
}

// preBindAsync runs PreBind in a goroutine.
func (e *testEnv) preBindAsync(cs fwk.CycleState, pod *v1.Pod, node string) <-chan *fwk.Status {
	ch := make(chan *fwk.Status, 1)
	go func() { ch <- e.pl.PreBind(e.ctx, cs, pod, node) }()
	return ch
}

// waitClaimRef waits until PreBind's claimRef write reached the API server.
func (e *testEnv) waitClaimRef(pvName, claim string) *v1.PersistentVolume {
	e.t.Helper()
	var pv *v1.PersistentVolume
	e.waitFor(func() bool {
		pv = e.apiPV(pvName)
		return pv.Spec.ClaimRef != nil && pv.Spec.ClaimRef.Name == claim
	}, "claimRef of %s not written", pvName)
	return pv
}

// completeBind does what the PV controller does once the scheduler wrote a
// claimRef: the PV becomes Bound and the claim gets volumeName and the
// bind-completed annotation.
func (e *testEnv) completeBind(pvName, claim string) {
	e.t.Helper()
	pv := e.apiPV(pvName)
	pv.Status.Phase = v1.VolumeBound
	_, err := e.client.CoreV1().PersistentVolumes().UpdateStatus(e.ctx, pv, metav1.UpdateOptions{})
	require.NoError(e.t, err)
	pvc := e.apiPVC(testNS, claim)
	pvcBound(pvName)(pvc)
	_, err = e.client.CoreV1().PersistentVolumeClaims(testNS).Update(e.ctx, pvc, metav1.UpdateOptions{})
	require.NoError(e.t, err)
}

func waitStatus(t *testing.T, ch <-chan *fwk.Status, within time.Duration) *fwk.Status {
	t.Helper()
	select {
	case st := <-ch:
		return st
	case <-time.After(within):
		t.Fatalf("PreBind did not return within %s", within)
		return nil
	}
}

func staticFixture() []runtime.Object {
	return []runtime.Object{
		localClass("local"),
		makeNode("node-1", "host-1"),
		makePVC("data-0", "local", "10Gi"),
		makePV("p1", "local", "10Gi", onHost("host-1")),
	}
}

// pvControllerArgs configures bindMode PVController: PreBind writes the
// claimRef and waits for the PV controller (simulated by completeBind).
func pvControllerArgs(timeoutSeconds int64) *config.LocalVolumeBindingArgs {
	return &config.LocalVolumeBindingArgs{BindTimeoutSeconds: timeoutSeconds, BindMode: config.BindModePVController}
}

func TestPreBindSuccess(t *testing.T) {
	e := newEnv(t, pvControllerArgs(config.DefaultBindTimeoutSeconds), staticFixture()...)
	pod := makePod("web", "data-0")
	cs := e.reservedCycle(pod, "node-1")
	done := e.preBindAsync(cs, pod, "node-1")

	pv := e.waitClaimRef("p1", "data-0")
	assert.Equal(t, testNS, pv.Spec.ClaimRef.Namespace)
	assert.Equal(t, "uid-data-0", string(pv.Spec.ClaimRef.UID))
	assert.Equal(t, "yes", pv.Annotations[volume.AnnBoundByController])
	select {
	case st := <-done:
		t.Fatalf("PreBind returned before the bind completed: %v", st)
	case <-time.After(100 * time.Millisecond):
	}

	start := time.Now()
	e.completeBind("p1", "data-0")
	st := waitStatus(t, done, 5*time.Second)
	assert.True(t, st.IsSuccess(), "PreBind: %v", st)
	assert.Less(t, time.Since(start), 2*time.Second, "PreBind is woken by informer events, not a slow poll")
	// Still bound: nothing was reverted.
	assert.Equal(t, "data-0", e.apiPV("p1").Spec.ClaimRef.Name)
	// Unreserve only drops the index's promise; it never touches the API.
	e.pl.Unreserve(e.ctx, cs, pod, "node-1")
	assert.Equal(t, "data-0", e.apiPV("p1").Spec.ClaimRef.Name)
}

// When the claimRef is already in place (an admin pre-bound with the claim's
// UID) PreBind writes nothing and only waits.
func TestPreBindAlreadyWritten(t *testing.T) {
	e := newEnv(t, pvControllerArgs(config.DefaultBindTimeoutSeconds),
		localClass("local"),
		makeNode("node-1", "host-1"),
		makePVC("data-0", "local", "10Gi"),
		makePV("p1", "local", "10Gi", onHost("host-1"), pvClaimRef(testNS, "data-0", "uid-data-0")),
	)
	pod := makePod("web", "data-0")
	rv := e.apiPV("p1").ResourceVersion
	cs := e.reservedCycle(pod, "node-1")
	done := e.preBindAsync(cs, pod, "node-1")
	e.completeBind("p1", "data-0")
	st := waitStatus(t, done, 5*time.Second)
	assert.True(t, st.IsSuccess(), "PreBind: %v", st)
	pv := e.apiPV("p1")
	assert.NotEqual(t, rv, pv.ResourceVersion) // completeBind's status write
	assert.Empty(t, pv.Annotations[volume.AnnBoundByController], "PreBind did not rewrite the PV")
}

func TestPreBindTimeoutReverts(t *testing.T) {
	e := newEnv(t, pvControllerArgs(1), staticFixture()...)
	pod := makePod("web", "data-0")
	cs := e.reservedCycle(pod, "node-1")

	start := time.Now()
	st := waitStatus(t, e.preBindAsync(cs, pod, "node-1"), 10*time.Second)
	elapsed := time.Since(start)
	require.False(t, st.IsSuccess())
	assert.Equal(t, fwk.Error, st.Code())
	assert.Contains(t, st.Message(), "timed out after 1s")
	assert.GreaterOrEqual(t, elapsed, time.Second)

	// Reverted in the API: the PV is free again.
	pv := e.apiPV("p1")
	assert.Nil(t, pv.Spec.ClaimRef)
	assert.NotContains(t, pv.Annotations, volume.AnnBoundByController)
	assert.Eventually(t, func() bool {
		for {
			select {
			case ev := <-e.recorder.Events:
				if strings.Contains(ev, "BerthBindReverted") && strings.Contains(ev, "p1") {
					return true
				}
			default:
				return false
			}
		}
	}, 5*time.Second, 10*time.Millisecond, "no BerthBindReverted event")

	// After the framework's Unreserve and the informer catching up, another
	// pod can have the volume.
	e.pl.Unreserve(e.ctx, cs, pod, "node-1")
	e.waitForIndex("p1")
	assert.False(t, e.pl.index.IsAssumed("p1"))
	e.create(makePVC("data-1", "local", "10Gi"))
	e.waitFor(func() bool {
		_, err := e.pl.pvcLister.PersistentVolumeClaims(testNS).Get("data-1")
		return err == nil
	}, "claim data-1 not cached")
	r := e.cycle(makePod("other", "data-1"), "node-1")
	require.True(t, r.filterStatus["node-1"].IsSuccess(), "%v", r.filterStatus["node-1"])
	assert.Equal(t, map[string]string{"data-1": "p1"}, staticPlan(t, r.state, "node-1"))
}

func TestPreBindClaimDeletedReverts(t *testing.T) {
	e := newEnv(t, pvControllerArgs(config.DefaultBindTimeoutSeconds), staticFixture()...)
	pod := makePod("web", "data-0")
	cs := e.reservedCycle(pod, "node-1")
	done := e.preBindAsync(cs, pod, "node-1")
	e.waitClaimRef("p1", "data-0")

	require.NoError(t, e.client.CoreV1().PersistentVolumeClaims(testNS).Delete(e.ctx, "data-0", metav1.DeleteOptions{}))
	st := waitStatus(t, done, 5*time.Second)
	require.False(t, st.IsSuccess())
	assert.Contains(t, st.Message(), "PersistentVolumeClaim ns/data-0 was deleted")
	assert.Nil(t, e.apiPV("p1").Spec.ClaimRef, "claimRef reverted")
}

func TestPreBindPodDeletedReverts(t *testing.T) {
	e := newEnv(t, pvControllerArgs(config.DefaultBindTimeoutSeconds), staticFixture()...)
	pod := makePod("web", "data-0")
	cs := e.reservedCycle(pod, "node-1")
	done := e.preBindAsync(cs, pod, "node-1")
	e.waitClaimRef("p1", "data-0")

	require.NoError(t, e.client.CoreV1().Pods(testNS).Delete(e.ctx, "web", metav1.DeleteOptions{}))
	st := waitStatus(t, done, 5*time.Second)
	require.False(t, st.IsSuccess())
	assert.Contains(t, st.Message(), "pod ns/web was deleted")
	assert.Nil(t, e.apiPV("p1").Spec.ClaimRef, "claimRef reverted")
}

// If the PV changed in the API between Reserve and PreBind, the write
// conflicts; nothing of ours is in the API, so nothing is reverted.
func TestPreBindConflict(t *testing.T) {
	e := newEnv(t, nil, staticFixture()...)
	pod := makePod("web", "data-0")
	cs := e.reservedCycle(pod, "node-1")
	pv := e.apiPV("p1")
	pv.Labels = map[string]string{"changed": "yes"}
	_, err := e.client.CoreV1().PersistentVolumes().Update(e.ctx, pv, metav1.UpdateOptions{})
	require.NoError(t, err)

	st := waitStatus(t, e.preBindAsync(cs, pod, "node-1"), 5*time.Second)
	require.False(t, st.IsSuccess())
	assert.Contains(t, st.Message(), "writing claimRef")
	got := e.apiPV("p1")
	assert.Nil(t, got.Spec.ClaimRef)
	assert.Equal(t, "yes", got.Labels["changed"])
}

// A bind that the PV controller completes just as the timeout fires is kept.
func TestRevertKeepsCompletedBind(t *testing.T) {
	e := newEnv(t, nil, staticFixture()...)
	pod := makePod("web", "data-0")
	cs := e.reservedCycle(pod, "node-1")
	s, err := readState(cs)
	require.NoError(t, err)
	w, err := e.pl.writeBindings(e.ctx, s.reserved)
	require.NoError(t, err)
	e.completeBind("p1", "data-0")
	e.pl.revert(klog.Background(), pod, w)
	assert.Equal(t, "data-0", e.apiPV("p1").Spec.ClaimRef.Name)
}

func provisionFixture() []runtime.Object {
	return []runtime.Object{
		provisioningClass("csi", "csi.example.com"),
		makeNode("node-1", "host-1"),
		makePVC("data-0", "csi", "10Gi"),
	}
}

func TestPreBindProvision(t *testing.T) {
	e := newEnv(t, nil, provisionFixture()...)
	pod := makePod("web", "data-0")
	cs := e.reservedCycle(pod, "node-1")
	done := e.preBindAsync(cs, pod, "node-1")

	e.waitFor(func() bool {
		return e.apiPVC(testNS, "data-0").Annotations[volume.AnnSelectedNode] == "node-1"
	}, "selected-node annotation not written")

	// The provisioner creates a PV on the node and the PV controller binds.
	e.create(makePV("pvc-data-0", "csi", "10Gi", onHost("host-1"), pvClaimRef(testNS, "data-0", "uid-data-0"), pvPhase(v1.VolumeBound)))
	pvc := e.apiPVC(testNS, "data-0")
	pvcBound("pvc-data-0")(pvc)
	_, err := e.client.CoreV1().PersistentVolumeClaims(testNS).Update(e.ctx, pvc, metav1.UpdateOptions{})
	require.NoError(t, err)

	st := waitStatus(t, done, 5*time.Second)
	assert.True(t, st.IsSuccess(), "PreBind: %v", st)
}

// The scheduler's PVC informer may deliver the bound claim before its PV
// informer delivers the provisioned PV. PreBind must be woken by the PV's
// arrival, whose name it could not know when it started waiting.
func TestPreBindProvisionPVArrivesLast(t *testing.T) {
	e := newEnv(t, nil, provisionFixture()...)
	pod := makePod("web", "data-0")
	cs := e.reservedCycle(pod, "node-1")
	done := e.preBindAsync(cs, pod, "node-1")
	e.waitFor(func() bool {
		return e.apiPVC(testNS, "data-0").Annotations[volume.AnnSelectedNode] == "node-1"
	}, "selected-node annotation not written")

	pvc := e.apiPVC(testNS, "data-0")
	pvcBound("pvc-data-0")(pvc)
	_, err := e.client.CoreV1().PersistentVolumeClaims(testNS).Update(e.ctx, pvc, metav1.UpdateOptions{})
	require.NoError(t, err)
	e.waitFor(func() bool {
		c, err := e.pl.pvcLister.PersistentVolumeClaims(testNS).Get("data-0")
		return err == nil && c.Spec.VolumeName == "pvc-data-0"
	}, "bound claim not cached")
	select {
	case st := <-done:
		t.Fatalf("PreBind returned before the PV arrived: %v", st)
	case <-time.After(100 * time.Millisecond):
	}

	e.create(makePV("pvc-data-0", "csi", "10Gi", onHost("host-1"), pvClaimRef(testNS, "data-0", "uid-data-0"), pvPhase(v1.VolumeBound)))
	st := waitStatus(t, done, 5*time.Second)
	assert.True(t, st.IsSuccess(), "PreBind: %v", st)
}

// A provisioned PV that does not admit the node fails the bind.
func TestPreBindProvisionedOnWrongNode(t *testing.T) {
	e := newEnv(t, nil, provisionFixture()...)
	pod := makePod("web", "data-0")
	cs := e.reservedCycle(pod, "node-1")
	done := e.preBindAsync(cs, pod, "node-1")
	e.waitFor(func() bool {
		return e.apiPVC(testNS, "data-0").Annotations[volume.AnnSelectedNode] == "node-1"
	}, "selected-node annotation not written")
	e.create(makePV("pvc-data-0", "csi", "10Gi", onHost("host-elsewhere"), pvClaimRef(testNS, "data-0", "uid-data-0"), pvPhase(v1.VolumeBound)))
	pvc := e.apiPVC(testNS, "data-0")
	pvcBound("pvc-data-0")(pvc)
	_, err := e.client.CoreV1().PersistentVolumeClaims(testNS).Update(e.ctx, pvc, metav1.UpdateOptions{})
	require.NoError(t, err)
	st := waitStatus(t, done, 5*time.Second)
	require.False(t, st.IsSuccess())
	assert.Contains(t, st.Message(), "provisioned PersistentVolume pvc-data-0 does not admit node node-1")
}

func TestPreBindProvisionTimeoutReverts(t *testing.T) {
	e := newEnv(t, &config.LocalVolumeBindingArgs{BindTimeoutSeconds: 1, BindMode: config.DefaultBindMode}, provisionFixture()...)
	pod := makePod("web", "data-0")
	cs := e.reservedCycle(pod, "node-1")
	st := waitStatus(t, e.preBindAsync(cs, pod, "node-1"), 10*time.Second)
	require.False(t, st.IsSuccess())
	assert.Contains(t, st.Message(), "timed out")
	assert.NotContains(t, e.apiPVC(testNS, "data-0").Annotations, volume.AnnSelectedNode, "selected-node annotation reverted")
}

func TestPreBindProvisioningFailed(t *testing.T) {
	e := newEnv(t, nil, provisionFixture()...)
	pod := makePod("web", "data-0")
	cs := e.reservedCycle(pod, "node-1")
	done := e.preBindAsync(cs, pod, "node-1")
	e.waitFor(func() bool {
		return e.apiPVC(testNS, "data-0").Annotations[volume.AnnSelectedNode] == "node-1"
	}, "selected-node annotation not written")

	// The provisioner gives up and asks for rescheduling.
	pvc := e.apiPVC(testNS, "data-0")
	delete(pvc.Annotations, volume.AnnSelectedNode)
	_, err := e.client.CoreV1().PersistentVolumeClaims(testNS).Update(e.ctx, pvc, metav1.UpdateOptions{})
	require.NoError(t, err)

	st := waitStatus(t, done, 5*time.Second)
	require.False(t, st.IsSuccess())
	assert.Contains(t, st.Message(), "provisioning failed for PersistentVolumeClaim ns/data-0")
}
