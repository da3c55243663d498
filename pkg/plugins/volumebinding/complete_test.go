package volumebinding

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/component-helpers/storage/volume"
	"k8s.io/utils/ptr"
)

// Tests of bindMode Direct (the default): PreBind completes binds without
// the PV controller. No controller runs here, so a successful PreBind proves
// it did every step itself.

var pvcResource = schema.GroupResource{Resource: "persistentvolumeclaims"}

// assertBoundPair checks that the PV and claim look exactly as the PV
// controller's bind() leaves them.
func assertBoundPair(t *testing.T, e *testEnv, pvName, claim string) {
	t.Helper()
	pv := e.apiPV(pvName)
	pvc := e.apiPVC(testNS, claim)
	require.NotNil(t, pv.Spec.ClaimRef, "PV %s claimRef", pvName)
	assert.Equal(t, claim, pv.Spec.ClaimRef.Name)
	assert.Equal(t, pvc.UID, pv.Spec.ClaimRef.UID)
	assert.Equal(t, "yes", pv.Annotations[volume.AnnBoundByController])
	assert.Equal(t, v1.VolumeBound, pv.Status.Phase)

	assert.Equal(t, pvName, pvc.Spec.VolumeName)
	assert.Equal(t, "yes", pvc.Annotations[volume.AnnBindCompleted])
	assert.Equal(t, "yes", pvc.Annotations[volume.AnnBoundByController])
	assert.Equal(t, v1.ClaimBound, pvc.Status.Phase)
	assert.Equal(t, pv.Spec.AccessModes, pvc.Status.AccessModes)
	want := pv.Spec.Capacity[v1.ResourceStorage]
	got := pvc.Status.Capacity[v1.ResourceStorage]
	assert.Zero(t, want.Cmp(got), "claim status capacity %s, PV capacity %s", got.String(), want.String())
}

func TestDirectBindCompletesWithoutPVController(t *testing.T) {
	e := newEnv(t, nil, staticFixture()...)
	pod := makePod("web", "data-0")
	cs := e.reservedCycle(pod, "node-1")
	st := waitStatus(t, e.preBindAsync(cs, pod, "node-1"), 10*time.Second)
	require.True(t, st.IsSuccess(), "PreBind: %v", st)
	assertBoundPair(t, e, "p1", "data-0")
}

// The claims of one pod are bound in parallel; all end bound to the PVs
// Reserve chose, with the VolumeAttributesClass carried over.
func TestDirectBindSeveralClaims(t *testing.T) {
	e := newEnv(t, nil,
		localClass("local"),
		makeNode("node-1", "host-1"),
		makePVC("a", "local", "5Gi"),
		makePVC("b", "local", "10Gi", pvcVAC("gold")),
		makePVC("c", "local", "20Gi"),
		makePV("p5", "local", "5Gi", onHost("host-1")),
		makePV("p10", "local", "10Gi", onHost("host-1"), pvVAC("gold")),
		makePV("p20", "local", "20Gi", onHost("host-1")),
	)
	pod := makePod("web", "a", "b", "c")
	cs := e.reservedCycle(pod, "node-1")
	st := waitStatus(t, e.preBindAsync(cs, pod, "node-1"), 10*time.Second)
	require.True(t, st.IsSuccess(), "PreBind: %v", st)
	assertBoundPair(t, e, "p5", "a")
	assertBoundPair(t, e, "p10", "b")
	assertBoundPair(t, e, "p20", "c")
	assert.Equal(t, ptr.To("gold"), e.apiPVC(testNS, "b").Status.CurrentVolumeAttributesClassName)
}

// The PV controller may complete the same bind concurrently. When it writes
// first, PreBind's write conflicts; PreBind re-reads, finds the step done and
// goes on without overwriting the controller's write.
func TestDirectBindControllerWritesFirst(t *testing.T) {
	e := newEnv(t, nil, staticFixture()...)
	raced := raceClaimWrite(t, e, "data-0", func(pvc *v1.PersistentVolumeClaim) {
		// The controller's bindClaimToVolume: spec and annotations; the
		// status comes in a later write.
		pvc.Spec.VolumeName = "p1"
		pvc.Annotations = map[string]string{
			volume.AnnBindCompleted:     "yes",
			volume.AnnBoundByController: "yes",
			"test/written-by":           "pv-controller",
		}
	})
	pod := makePod("web", "data-0")
	cs := e.reservedCycle(pod, "node-1")
	st := waitStatus(t, e.preBindAsync(cs, pod, "node-1"), 10*time.Second)
	require.True(t, st.IsSuccess(), "PreBind: %v", st)
	assert.True(t, raced.Load(), "the race was staged")
	assertBoundPair(t, e, "p1", "data-0")
	assert.Equal(t, "pv-controller", e.apiPVC(testNS, "data-0").Annotations["test/written-by"], "PreBind did not overwrite the controller's write")
}

// If the claim got bound to another PV meanwhile, PreBind fails and
// releases the PV it reserved.
func TestDirectBindClaimBoundElsewhereReverts(t *testing.T) {
	e := newEnv(t, nil, staticFixture()...)
	raced := raceClaimWrite(t, e, "data-0", pvcBound("p-other"))
	pod := makePod("web", "data-0")
	cs := e.reservedCycle(pod, "node-1")
	st := waitStatus(t, e.preBindAsync(cs, pod, "node-1"), 10*time.Second)
	require.False(t, st.IsSuccess())
	assert.True(t, raced.Load(), "the race was staged")
	assert.Contains(t, st.Message(), "PersistentVolumeClaim ns/data-0 is bound to PersistentVolume p-other")
	pv := e.apiPV("p1")
	assert.Nil(t, pv.Spec.ClaimRef, "claimRef reverted")
	assert.NotContains(t, pv.Annotations, volume.AnnBoundByController)
	assertEvent(t, e, "BerthBindReverted", "p1")
}

// raceClaimWrite stages a concurrent writer (the PV controller): just before
// PreBind's first update of the claim's spec reaches the API, the stored
// claim is changed by mutate (with a new resourceVersion) and PreBind's
// update fails with a Conflict, as its resourceVersion is now stale. The
// returned flag reports whether the race happened.
func raceClaimWrite(t *testing.T, e *testEnv, claim string, mutate func(*v1.PersistentVolumeClaim)) *atomic.Bool {
	tracker := e.client.Tracker()
	var raced atomic.Bool
	e.client.PrependReactor("update", "persistentvolumeclaims", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "" || !raced.CompareAndSwap(false, true) {
			return false, nil, nil
		}
		obj, err := tracker.Get(a.GetResource(), testNS, claim)
		require.NoError(t, err)
		pvc := obj.(*v1.PersistentVolumeClaim).DeepCopy()
		mutate(pvc)
		pvc.ResourceVersion = "999999"
		require.NoError(t, tracker.Update(a.GetResource(), pvc, testNS))
		return true, nil, apierrors.NewConflict(pvcResource, claim, nil)
	})
	return &raced
}

// A claim deleted before PreBind: the bind cannot be committed, so the
// reserved PV is released.
func TestDirectBindClaimDeletedReverts(t *testing.T) {
	e := newEnv(t, nil, staticFixture()...)
	pod := makePod("web", "data-0")
	cs := e.reservedCycle(pod, "node-1")
	require.NoError(t, e.client.CoreV1().PersistentVolumeClaims(testNS).Delete(e.ctx, "data-0", metav1.DeleteOptions{}))
	st := waitStatus(t, e.preBindAsync(cs, pod, "node-1"), 10*time.Second)
	require.False(t, st.IsSuccess())
	assert.Contains(t, st.Message(), "binding PersistentVolumeClaim spec ns/data-0 to PersistentVolume p1")
	assert.Nil(t, e.apiPV("p1").Spec.ClaimRef, "claimRef reverted")
}

// Once the claim's spec names the PV the bind is done: a failing status
// write is left to the PV controller and PreBind succeeds as soon as its
// informer shows the claim bound.
func TestDirectBindStatusFailureLeftToController(t *testing.T) {
	e := newEnv(t, nil, staticFixture()...)
	e.client.PrependReactor("update", "persistentvolumeclaims", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "status" {
			return false, nil, nil
		}
		return true, nil, apierrors.NewInternalError(assert.AnError)
	})
	pod := makePod("web", "data-0")
	cs := e.reservedCycle(pod, "node-1")
	st := waitStatus(t, e.preBindAsync(cs, pod, "node-1"), 10*time.Second)
	require.True(t, st.IsSuccess(), "PreBind: %v", st)
	pvc := e.apiPVC(testNS, "data-0")
	assert.Equal(t, "p1", pvc.Spec.VolumeName)
	assert.NotEqual(t, v1.ClaimBound, pvc.Status.Phase, "status left to the PV controller")
	assert.Equal(t, "data-0", e.apiPV("p1").Spec.ClaimRef.Name, "not reverted")
}

func TestClaimStatusBound(t *testing.T) {
	pv := makePV("p1", "local", "10Gi", onHost("h"), pvModes(v1.ReadWriteOnce, v1.ReadOnlyMany), pvVAC("gold"))
	for _, tc := range []struct {
		name      string
		pvc       *v1.PersistentVolumeClaim
		pv        func(*v1.PersistentVolume)
		wantDirty bool
		wantCap   string
		wantErr   string
	}{
		{name: "pending claim takes the PV's capacity, modes and class", pvc: makePVC("c", "local", "5Gi"), wantDirty: true, wantCap: "10Gi"},
		{name: "already Bound is left alone", pvc: withPhase(makePVC("c", "local", "5Gi"), v1.ClaimBound)},
		{
			name: "pre-resize capacity annotation wins", pvc: makePVC("c", "local", "5Gi"), wantDirty: true, wantCap: "8Gi",
			pv: func(pv *v1.PersistentVolume) {
				pv.Annotations = map[string]string{"volume.alpha.kubernetes.io/pre-resize-capacity": "8Gi"}
			},
		},
		{
			name: "PV without capacity", pvc: makePVC("c", "local", "5Gi"), wantErr: "PersistentVolume p1 has no storage capacity",
			pv: func(pv *v1.PersistentVolume) { pv.Spec.Capacity = nil },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pv.DeepCopy()
			if tc.pv != nil {
				tc.pv(p)
			}
			got, dirty, err := claimStatusBound(tc.pvc, p)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantDirty, dirty)
			if !dirty {
				assert.Same(t, tc.pvc, got)
				return
			}
			assert.Equal(t, v1.ClaimBound, got.Status.Phase)
			assert.Equal(t, p.Spec.AccessModes, got.Status.AccessModes)
			want := resource.MustParse(tc.wantCap)
			c := got.Status.Capacity[v1.ResourceStorage]
			assert.Zero(t, want.Cmp(c), "capacity %s", c.String())
			assert.Equal(t, ptr.To("gold"), got.Status.CurrentVolumeAttributesClassName)
			assert.Equal(t, v1.ClaimPending, tc.pvc.Status.Phase, "input not modified")
		})
	}
}

func withPhase(pvc *v1.PersistentVolumeClaim, phase v1.PersistentVolumeClaimPhase) *v1.PersistentVolumeClaim {
	pvc.Status.Phase = phase
	return pvc
}

// assertEvent waits for an event with the reason whose message mentions s.
func assertEvent(t *testing.T, e *testEnv, reason, s string) {
	t.Helper()
	assert.Eventually(t, func() bool {
		for {
			select {
			case ev := <-e.recorder.Events:
				if strings.Contains(ev, reason) && strings.Contains(ev, s) {
					return true
				}
			default:
				return false
			}
		}
	}, 5*time.Second, 10*time.Millisecond, "no %s event mentioning %s", reason, s)
}

// The same holds for the PV's phase: after the commit, a failing PV status
// write does not fail or revert the bind.
func TestDirectBindPVStatusFailureLeftToController(t *testing.T) {
	e := newEnv(t, nil, staticFixture()...)
	e.client.PrependReactor("update", "persistentvolumes", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "status" {
			return false, nil, nil
		}
		return true, nil, apierrors.NewServiceUnavailable("test: PV status writes refused")
	})
	pod := makePod("web", "data-0")
	cs := e.reservedCycle(pod, "node-1")
	st := waitStatus(t, e.preBindAsync(cs, pod, "node-1"), 10*time.Second)
	require.True(t, st.IsSuccess(), "PreBind: %v", st)
	pvc := e.apiPVC(testNS, "data-0")
	assert.Equal(t, "p1", pvc.Spec.VolumeName)
	assert.Equal(t, v1.ClaimBound, pvc.Status.Phase)
	pv := e.apiPV("p1")
	assert.Equal(t, "data-0", pv.Spec.ClaimRef.Name, "not reverted")
	assert.NotEqual(t, v1.VolumeBound, pv.Status.Phase, "phase left to the PV controller")
}
