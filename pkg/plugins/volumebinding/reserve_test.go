package volumebinding

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/component-helpers/storage/volume"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
)

func TestReserveUnreserve(t *testing.T) {
	e := newEnv(t, nil,
		localClass("local"),
		makeNode("node-1", "host-1"),
		makePVC("a", "local", "10Gi"),
		makePVC("b", "local", "10Gi"),
		makePV("p1", "local", "10Gi", onHost("host-1")),
	)
	podA, podB := makePod("pod-a", "a"), makePod("pod-b", "b")

	rA := e.cycle(podA, "node-1")
	require.True(t, rA.filterStatus["node-1"].IsSuccess(), "%v", rA.filterStatus["node-1"])
	require.True(t, e.pl.Reserve(e.ctx, rA.state, podA, "node-1").IsSuccess())

	// The index now promises p1 to claim a; the API object is unchanged.
	assert.True(t, e.pl.index.IsAssumed("p1"))
	v, _ := e.pl.index.Get("p1")
	require.NotNil(t, v.PV.Spec.ClaimRef)
	assert.Equal(t, "a", v.PV.Spec.ClaimRef.Name)
	assert.Equal(t, "uid-a", string(v.PV.Spec.ClaimRef.UID))
	assert.Equal(t, "yes", v.PV.Annotations[volume.AnnBoundByController])
	assert.Nil(t, e.apiPV("p1").Spec.ClaimRef)

	// The next cycle does not see p1 as free.
	rB := e.cycle(podB, "node-1")
	st := rB.filterStatus["node-1"]
	require.NotNil(t, st)
	assert.Equal(t, "node node-1: claim ns/b (10Gi): no local PV fits: 1 claimed by another claim", st.Message())

	// A pod sharing claim a finds p1 pre-bound to it and may use it.
	podA2 := makePod("pod-a2", "a")
	rA2 := e.cycle(podA2, "node-1")
	require.True(t, rA2.filterStatus["node-1"].IsSuccess(), "%v", rA2.filterStatus["node-1"])
	assert.Equal(t, map[string]string{"a": "p1"}, staticPlan(t, rA2.state, "node-1"))

	e.pl.Unreserve(e.ctx, rA.state, podA, "node-1")
	assert.False(t, e.pl.index.IsAssumed("p1"))
	e.pl.Unreserve(e.ctx, rA.state, podA, "node-1") // idempotent

	rB = e.cycle(podB, "node-1")
	require.True(t, rB.filterStatus["node-1"].IsSuccess(), "%v", rB.filterStatus["node-1"])
	assert.Equal(t, map[string]string{"b": "p1"}, staticPlan(t, rB.state, "node-1"))
}

func TestReserveNothingToDo(t *testing.T) {
	e := newEnv(t, nil, localClass("local"), makeNode("node-1", "host-1"))
	pod := makePod("web")
	r := e.cycle(pod, "node-1")
	require.Equal(t, fwk.Skip, r.preStatus.Code())
	assert.True(t, e.pl.Reserve(e.ctx, r.state, pod, "node-1").IsSuccess())
	res, st := e.pl.PreBindPreFlight(e.ctx, r.state, pod, "node-1")
	assert.Equal(t, fwk.Skip, st.Code())
	assert.True(t, res.AllowParallel)
	assert.True(t, e.pl.PreBind(e.ctx, r.state, pod, "node-1").IsSuccess())
	e.pl.Unreserve(e.ctx, r.state, pod, "node-1")
}

// reserveRace lets n pods (one claim each) filter node-1 and then reserve,
// and returns the PV each successful reservation got.
func reserveRace(t *testing.T, e *testEnv, n int, filterFirst bool) map[string]string {
	t.Helper()
	var filtered, wg sync.WaitGroup
	filtered.Add(n)
	var mu sync.Mutex
	got := map[string]string{} // pod → PV
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			pod := makePod(fmt.Sprintf("pod-%d", i), fmt.Sprintf("c-%d", i))
			for attempt := 0; attempt < 20; attempt++ {
				r := e.cycle(pod, "node-1")
				if filterFirst && attempt == 0 {
					// Every pod filters before any reserves.
					filtered.Done()
					filtered.Wait()
				}
				if !r.filterStatus["node-1"].IsSuccess() {
					if !strings.Contains(r.filterStatus["node-1"].Message(), "claimed by another claim") {
						t.Errorf("%s: unexpected Filter status %v", pod.Name, r.filterStatus["node-1"])
					}
					return
				}
				if st := e.pl.Reserve(e.ctx, r.state, pod, "node-1"); !st.IsSuccess() {
					// The framework unreserves after a failed Reserve.
					e.pl.Unreserve(e.ctx, r.state, pod, "node-1")
					continue
				}
				s, err := readState(r.state)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got[pod.Name] = s.reserved.static[0].PV.Name
				mu.Unlock()
				return
			}
			t.Errorf("%s: no decision after 20 attempts", pod.Name)
		}(i)
	}
	wg.Wait()
	return got
}

// Pods reserved concurrently never get the same volume, even when they all
// filtered (and planned the same tightest volume) before any reserved.
func TestReserveConcurrent(t *testing.T) {
	for _, filterFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("filterFirst=%v", filterFirst), func(t *testing.T) {
			const pods, pvs = 8, 3
			objs := []runtime.Object{localClass("local"), makeNode("node-1", "host-1")}
			for i := 0; i < pods; i++ {
				objs = append(objs, makePVC(fmt.Sprintf("c-%d", i), "local", "10Gi"))
			}
			for i := 0; i < pvs; i++ {
				objs = append(objs, makePV(fmt.Sprintf("p-%d", i), "local", fmt.Sprintf("%dGi", 10+i)))
				onHost("host-1")(objs[len(objs)-1].(*v1.PersistentVolume))
			}
			e := newEnv(t, nil, objs...)
			got := reserveRace(t, e, pods, filterFirst)
			seen := map[string]string{}
			for pod, pv := range got {
				if other, dup := seen[pv]; dup {
					t.Errorf("PV %s reserved for both %s and %s", pv, other, pod)
				}
				seen[pv] = pod
			}
			assert.Len(t, got, pvs, "every volume is reserved once: %v", got)
			for pv, pod := range seen {
				v, _ := e.pl.index.Get(pv)
				require.NotNil(t, v.PV.Spec.ClaimRef, pv)
				assert.Equal(t, "c-"+strings.TrimPrefix(pod, "pod-"), v.PV.Spec.ClaimRef.Name, "index promise of %s", pv)
			}
		})
	}
}

func TestInvalidVolumeReportedOncePerVersion(t *testing.T) {
	bad := makePV("p-bad", "local", "10Gi", func(pv *v1.PersistentVolume) {
		pv.Spec.NodeAffinity = &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{}}
	})
	e := newEnv(t, nil, localClass("local"), makeNode("node-1", "host-1"), bad)
	require.Len(t, e.recorder.Events, 1)
	ev := <-e.recorder.Events
	assert.Contains(t, ev, "Warning BerthVolumeSkipped PersistentVolume p-bad is ignored by LocalVolumeBinding")

	// A resync of the same version is not reported again; a new version is.
	pv, _ := e.pl.index.APIObject("p-bad")
	e.pl.onPV(klog.Background(), pv)
	assert.Len(t, e.recorder.Events, 0)
	upd := e.apiPV("p-bad")
	upd.Labels = map[string]string{"x": "y"}
	_, err := e.client.CoreV1().PersistentVolumes().Update(e.ctx, upd, metav1.UpdateOptions{})
	require.NoError(t, err)
	e.waitFor(func() bool { return len(e.recorder.Events) == 1 }, "second version not reported")

	// Nothing is remembered about a PV once it is deleted.
	require.NoError(t, e.client.CoreV1().PersistentVolumes().Delete(e.ctx, "p-bad", metav1.DeleteOptions{}))
	e.waitFor(func() bool {
		e.pl.invalidMu.Lock()
		defer e.pl.invalidMu.Unlock()
		_, ok := e.pl.invalidSeen["p-bad"]
		return !ok
	}, "deleted PV still in invalidSeen")
}
