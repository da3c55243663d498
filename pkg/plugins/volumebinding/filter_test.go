package volumebinding

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"
)

const (
	rwo = v1.ReadWriteOnce
	rwx = v1.ReadWriteMany
	rox = v1.ReadOnlyMany
)

// filterCase runs one pod through PreFilter and Filter on the listed nodes.
// For each node, either wantPlan (claim → PV) or wantMsg (the exact status
// message; "*" + text for a substring) is checked.
type filterCase struct {
	name     string
	objs     []runtime.Object
	pod      *v1.Pod
	nodes    []string
	wantPlan map[string]map[string]string
	wantMsg  map[string]string
}

func runFilterCases(t *testing.T, tests []filterCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, tc.objs...)
			r := e.cycle(tc.pod, tc.nodes...)
			require.True(t, r.preStatus.IsSuccess(), "PreFilter: %v", r.preStatus)
			for node, want := range tc.wantPlan {
				st := r.filterStatus[node]
				if assert.True(t, st.IsSuccess(), "Filter on %s: %v", node, st) {
					assert.Equal(t, want, staticPlan(t, r.state, node), "plan on %s", node)
				}
			}
			for node, want := range tc.wantMsg {
				st := r.filterStatus[node]
				require.NotNil(t, st, "Filter on %s succeeded", node)
				assert.Equal(t, fwk.UnschedulableAndUnresolvable, st.Code(), "Filter on %s: %v", node, st)
				if len(want) > 0 && want[0] == '*' {
					assert.Contains(t, st.Message(), want[1:], "Filter on %s", node)
				} else {
					assert.Equal(t, want, st.Message(), "Filter on %s", node)
				}
				_, ok := PlanFor(r.state, node)
				assert.False(t, ok, "a rejected node has no plan")
			}
		})
	}
}

func TestFilterStatic(t *testing.T) {
	local := localClass("local")
	nodes := []runtime.Object{
		makeNode("node-1", "host-1"),
		makeNode("node-2", "host-2"),
		makeNode("host-1", "host-3"), // named like node-1's hostname label
	}
	objs := func(more ...runtime.Object) []runtime.Object {
		return append(append([]runtime.Object{local}, nodes...), more...)
	}
	runFilterCases(t, []filterCase{
		{
			name: "tightest fit among the node's volumes",
			objs: objs(
				makePVC("data-0", "local", "10Gi"),
				makePV("p-50", "local", "50Gi", onHost("host-1")),
				makePV("p-20", "local", "20Gi", onHost("host-1")),
				makePV("p-100", "local", "100Gi", onHost("host-1")),
				makePV("p-5", "local", "5Gi", onHost("host-1")),
				makePV("p-10-elsewhere", "local", "10Gi", onHost("host-2")),
				makePV("p-10-other-class", "other", "10Gi", onHost("host-1")),
			),
			pod:      makePod("web", "data-0"),
			nodes:    []string{"node-1", "node-2", "host-1"},
			wantPlan: map[string]map[string]string{"node-1": {"data-0": "p-20"}, "node-2": {"data-0": "p-10-elsewhere"}},
			wantMsg:  map[string]string{"host-1": `node host-1: claim ns/data-0 (10Gi): no local PV fits: no PersistentVolume of StorageClass "local" on the node`},
		},
		{
			// A greedy matcher gives A (no selector) the smallest volume
			// that fits, P1, and then B finds nothing.
			name: "greedy selector trap",
			objs: objs(
				makePVC("a", "local", "10Gi"),
				makePVC("b", "local", "20Gi", pvcSelector("tier", "fast")),
				makePV("p1", "local", "20Gi", onHost("host-1"), pvLabels("tier", "fast")),
				makePV("p2", "local", "100Gi", onHost("host-1")),
			),
			pod:      makePod("web", "a", "b"),
			nodes:    []string{"node-1"},
			wantPlan: map[string]map[string]string{"node-1": {"a": "p2", "b": "p1"}},
		},
		{
			name: "access-mode trap",
			objs: objs(
				makePVC("a", "local", "5Gi", pvcModes(rwo)),
				makePVC("b", "local", "10Gi", pvcModes(rwx)),
				makePV("p1", "local", "10Gi", onHost("host-1"), pvModes(rwo, rwx)),
				makePV("p2", "local", "20Gi", onHost("host-1"), pvModes(rwo)),
			),
			pod:      makePod("web", "a", "b"),
			nodes:    []string{"node-1"},
			wantPlan: map[string]map[string]string{"node-1": {"a": "p2", "b": "p1"}},
		},
		{
			name: "two claims, one volume: the explanation names both",
			objs: objs(
				makePVC("a", "local", "5Gi"),
				makePVC("b", "local", "5Gi"),
				makePV("p1", "local", "10Gi", onHost("host-1")),
			),
			pod:     makePod("web", "a", "b"),
			nodes:   []string{"node-1"},
			wantMsg: map[string]string{"node-1": "node node-1: claims ns/a (5Gi), ns/b (5Gi) need 2 local PVs but together fit only 1 (p1)"},
		},
		{
			name: "PV pre-bound by an admin is honoured, and only on its node",
			objs: objs(
				makePVC("data-0", "local", "10Gi"),
				makePV("p-pre", "local", "50Gi", onHost("host-1"), pvClaimRef(testNS, "data-0", "")),
				makePV("p-tight", "local", "10Gi", onHost("host-1")),
				makePV("p-other", "local", "10Gi", onHost("host-2")),
			),
			pod:      makePod("web", "data-0"),
			nodes:    []string{"node-1", "node-2"},
			wantPlan: map[string]map[string]string{"node-1": {"data-0": "p-pre"}},
			wantMsg:  map[string]string{"node-2": "node node-2: claim ns/data-0 (10Gi): pre-bound PersistentVolume p-pre is not on this node"},
		},
		{
			name: "pre-bound PV too small",
			objs: objs(
				makePVC("data-0", "local", "10Gi"),
				makePV("p-pre", "local", "5Gi", onHost("host-1"), pvClaimRef(testNS, "data-0", "")),
			),
			pod:     makePod("web", "data-0"),
			nodes:   []string{"node-1"},
			wantMsg: map[string]string{"node-1": "node node-1: claim ns/data-0 (10Gi): pre-bound PersistentVolume p-pre is too small"},
		},
		{
			name: "PV pre-bound to another claim UID is not used",
			objs: objs(
				makePVC("data-0", "local", "10Gi"),
				makePV("p-old", "local", "10Gi", onHost("host-1"), pvClaimRef(testNS, "data-0", "uid-of-a-deleted-claim"), pvPhase(v1.VolumeReleased)),
				makePV("p-new", "local", "20Gi", onHost("host-1")),
			),
			pod:      makePod("web", "data-0"),
			nodes:    []string{"node-1"},
			wantPlan: map[string]map[string]string{"node-1": {"data-0": "p-new"}},
		},
		{
			name: "deleting PV skipped",
			objs: objs(
				makePVC("data-0", "local", "10Gi"),
				makePV("p-del", "local", "10Gi", onHost("host-1"), pvDeleting()),
				makePV("p-ok", "local", "30Gi", onHost("host-1")),
				makePV("p-del-2", "local", "10Gi", onHost("host-2"), pvDeleting()),
			),
			pod:      makePod("web", "data-0"),
			nodes:    []string{"node-1", "node-2"},
			wantPlan: map[string]map[string]string{"node-1": {"data-0": "p-ok"}},
			wantMsg:  map[string]string{"node-2": "node node-2: claim ns/data-0 (10Gi): no local PV fits: 1 being deleted"},
		},
		{
			name: "volume mode mismatch",
			objs: objs(
				makePVC("data-0", "local", "10Gi", pvcBlock()),
				makePV("p-fs", "local", "10Gi", onHost("host-1")),
				makePV("p-fs-2", "local", "10Gi", onHost("host-2")),
				makePV("p-block", "local", "40Gi", onHost("host-2"), pvBlock()),
			),
			pod:      makePod("web", "data-0"),
			nodes:    []string{"node-1", "node-2"},
			wantPlan: map[string]map[string]string{"node-2": {"data-0": "p-block"}},
			wantMsg:  map[string]string{"node-1": "node node-1: claim ns/data-0 (10Gi): no local PV fits: 1 volume mode mismatch"},
		},
		{
			name: "VolumeAttributesClass mismatch",
			objs: objs(
				makePVC("data-0", "local", "10Gi", pvcVAC("gold")),
				makePV("p-plain", "local", "10Gi", onHost("host-1")),
				makePV("p-silver", "local", "10Gi", onHost("host-1"), pvVAC("silver")),
				makePV("p-plain-2", "local", "10Gi", onHost("host-2")),
				makePV("p-gold", "local", "40Gi", onHost("host-2"), pvVAC("gold")),
			),
			pod:      makePod("web", "data-0"),
			nodes:    []string{"node-1", "node-2"},
			wantPlan: map[string]map[string]string{"node-2": {"data-0": "p-gold"}},
			wantMsg:  map[string]string{"node-1": "node node-1: claim ns/data-0 (10Gi): no local PV fits: 2 VolumeAttributesClass mismatch"},
		},
		{
			name: "claimed, released and unlabeled volumes are tallied",
			objs: objs(
				makePVC("data-0", "local", "10Gi", pvcSelector("tier", "fast")),
				makePV("p-taken", "local", "10Gi", onHost("host-1"), pvClaimRef(testNS, "someone-else", "uid-x"), pvPhase(v1.VolumeBound)),
				makePV("p-released", "local", "10Gi", onHost("host-1"), pvPhase(v1.VolumeReleased)),
				makePV("p-slow", "local", "10Gi", onHost("host-1"), pvLabels("tier", "slow")),
			),
			pod:     makePod("web", "data-0"),
			nodes:   []string{"node-1"},
			wantMsg: map[string]string{"node-1": "node node-1: claim ns/data-0 (10Gi): no local PV fits: 1 claimed by another claim, 1 not Available, 1 selector mismatch"},
		},
		{
			name: "invalid PV is skipped, never an error",
			objs: objs(
				makePVC("data-0", "local", "10Gi"),
				makePV("p-bad", "local", "10Gi", func(pv *v1.PersistentVolume) {
					onHost("host-1")(pv)
					pv.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions = append(
						pv.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions,
						v1.NodeSelectorRequirement{Key: "disks", Operator: v1.NodeSelectorOpGt, Values: []string{"many"}})
				}),
				makePV("p-good", "local", "20Gi", onHost("host-1")),
			),
			pod:      makePod("web", "data-0"),
			nodes:    []string{"node-1"},
			wantPlan: map[string]map[string]string{"node-1": {"data-0": "p-good"}},
		},
	})
}

// The status message format documented in filter.go.
func TestFilterMessageFormat(t *testing.T) {
	e := newEnv(t, nil,
		localClass("local"),
		makeNode("n7", "n7"),
		makePVC("data-0", "local", "10Gi"),
		makePV("p-5", "local", "5Gi", onHost("n7")),
		makePV("p-8", "local", "8Gi", onHost("n7")),
		makePV("p-20-rox", "local", "20Gi", onHost("n7"), pvModes(rox)),
	)
	r := e.cycle(makePod("web", "data-0"), "n7")
	st := r.filterStatus["n7"]
	require.NotNil(t, st)
	assert.Equal(t, fwk.UnschedulableAndUnresolvable, st.Code())
	assert.Equal(t, "node n7: claim ns/data-0 (10Gi): no local PV fits: 2 too small, 1 access mode mismatch", st.Message())
}

func TestFilterBoundClaims(t *testing.T) {
	e := newEnv(t, nil,
		localClass("local"),
		makeNode("node-1", "host-1"),
		makeNode("node-2", "host-2"),
		makePVC("data-0", "local", "10Gi", pvcBound("p1")),
		makePVC("data-1", "local", "10Gi", pvcBound("p-missing")),
		makePV("p1", "local", "10Gi", onHost("host-1"), pvClaimRef(testNS, "data-0", "uid-data-0"), pvPhase(v1.VolumeBound)),
	)
	r := e.cycle(makePod("web", "data-0"), "node-1", "node-2")
	assert.True(t, r.filterStatus["node-1"].IsSuccess(), "%v", r.filterStatus["node-1"])
	// The PreFilter result keeps the framework from asking, but Filter
	// must still be right on its own.
	st := r.filterStatus["node-2"]
	require.NotNil(t, st)
	assert.Equal(t, fwk.UnschedulableAndUnresolvable, st.Code())
	assert.Equal(t, "node node-2: PersistentVolume p1 (bound to ns/data-0) does not admit the node: node affinity mismatch", st.Message())
	assert.False(t, HasUnboundClaims(r.state))
	_, ok := PlanFor(r.state, "node-1")
	assert.False(t, ok, "no plan for a pod without unbound claims")

	r = e.cycle(makePod("web", "data-1"), "node-1")
	st = r.filterStatus["node-1"]
	require.NotNil(t, st)
	assert.Contains(t, st.Message(), `bound to PersistentVolume "p-missing", which does not exist`)
}

func TestFilterDynamicProvisioning(t *testing.T) {
	const driver = "csi.example.com"
	nodes := []runtime.Object{
		makeNode("node-z1", "host-z1", zoneLabel, "z1"),
		makeNode("node-z2", "host-z2", zoneLabel, "z2"),
	}
	objs := func(more ...runtime.Object) []runtime.Object {
		return append(append([]runtime.Object{}, nodes...), more...)
	}
	tests := []struct {
		name string
		objs []runtime.Object
		// node → capacity object name of the single Provision ("" for
		// none), or a rejection substring prefixed with "!".
		want map[string]string
		// node → static PV expected instead of a provision
		wantStatic map[string]string
	}{
		{
			name: "allowedTopologies: node outside is rejected",
			objs: objs(provisioningClass("csi", driver, "z1"), makePVC("data-0", "csi", "10Gi")),
			want: map[string]string{
				"node-z1": "",
				"node-z2": `!node node-z2: claim ns/data-0 (10Gi): no local PV fits: no PersistentVolume of StorageClass "csi" on the node; cannot provision: node is outside StorageClass "csi" allowedTopologies`,
			},
		},
		{
			name: "driver without capacity tracking: no capacity needed",
			objs: objs(provisioningClass("csi", driver), csiDriver(driver, false), makePVC("data-0", "csi", "10Gi"),
				capacityFor("cap-z1", "csi", "z1", "1Gi")),
			want: map[string]string{"node-z1": "", "node-z2": ""},
		},
		{
			name: "capacity tracked, too small: rejected",
			objs: objs(provisioningClass("csi", driver), csiDriver(driver, true), makePVC("data-0", "csi", "10Gi"),
				capacityFor("cap-z1", "csi", "z1", "5Gi"),
				capacityFor("cap-z2-other-class", "other", "z2", "1Ti")),
			want: map[string]string{
				"node-z1": `!cannot provision: not enough capacity: no CSIStorageCapacity of StorageClass "csi" reachable from the node has 10Gi`,
				"node-z2": `!cannot provision: not enough capacity`,
			},
		},
		{
			name: "capacity tracked, big enough: plan carries the tightest capacity",
			objs: objs(provisioningClass("csi", driver), csiDriver(driver, true), makePVC("data-0", "csi", "10Gi"),
				capacityFor("cap-z1-small", "csi", "z1", "5Gi"),
				capacityFor("cap-z1-big", "csi", "z1", "100Gi"),
				capacityFor("cap-z1-huge", "csi", "z1", "1Ti"),
				capacityFor("cap-z2-huge", "csi", "z2", "1Ti")),
			want: map[string]string{"node-z1": "cap-z1-big", "node-z2": "cap-z2-huge"},
		},
		{
			name: "existing local PV preferred to provisioning; provisioning when it is too small",
			objs: objs(provisioningClass("csi", driver), csiDriver(driver, true), makePVC("data-0", "csi", "10Gi"),
				makePV("p-z1", "csi", "20Gi", onHost("host-z1")),
				makePV("p-z2-small", "csi", "5Gi", onHost("host-z2")),
				capacityFor("cap-z1", "csi", "z1", "1Ti"),
				capacityFor("cap-z2", "csi", "z2", "1Ti")),
			wantStatic: map[string]string{"node-z1": "p-z1"},
			want:       map[string]string{"node-z2": "cap-z2"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, tc.objs...)
			r := e.cycle(makePod("web", "data-0"), "node-z1", "node-z2")
			require.True(t, r.preStatus.IsSuccess(), "%v", r.preStatus)
			for node, want := range tc.want {
				st := r.filterStatus[node]
				if len(want) > 0 && want[0] == '!' {
					require.NotNil(t, st, "Filter on %s succeeded", node)
					assert.Equal(t, fwk.UnschedulableAndUnresolvable, st.Code())
					assert.Contains(t, st.Message(), want[1:])
					continue
				}
				require.True(t, st.IsSuccess(), "Filter on %s: %v", node, st)
				plan, ok := PlanFor(r.state, node)
				require.True(t, ok)
				assert.Empty(t, plan.Static)
				require.Len(t, plan.Provisions, 1)
				p := plan.Provisions[0]
				assert.Equal(t, "data-0", p.PVC.Name)
				assert.Equal(t, "csi", p.Class)
				assert.Equal(t, 10*gi, p.Request)
				if want == "" {
					assert.Nil(t, p.NodeCapacity)
				} else if assert.NotNil(t, p.NodeCapacity) {
					assert.Equal(t, want, p.NodeCapacity.Name)
				}
			}
			for node, pv := range tc.wantStatic {
				require.True(t, r.filterStatus[node].IsSuccess(), "Filter on %s: %v", node, r.filterStatus[node])
				assert.Equal(t, map[string]string{"data-0": pv}, staticPlan(t, r.state, node))
				plan, _ := PlanFor(r.state, node)
				assert.Empty(t, plan.Provisions)
			}
		})
	}
}

// A claim whose provisioning was requested for a node can only go there.
func TestFilterSelectedNode(t *testing.T) {
	e := newEnv(t, nil,
		makeNode("node-1", "host-1"), makeNode("node-2", "host-2"),
		provisioningClass("csi", "csi.example.com"),
		makePVC("data-0", "csi", "10Gi", pvcAnnotation("volume.kubernetes.io/selected-node", "node-1")),
	)
	r := e.cycle(makePod("web", "data-0"), "node-1", "node-2")
	require.True(t, r.filterStatus["node-1"].IsSuccess(), "%v", r.filterStatus["node-1"])
	plan, _ := PlanFor(r.state, "node-1")
	require.Len(t, plan.Provisions, 1)
	assert.Equal(t, "node node-2: claim ns/data-0 is being provisioned for node node-1", r.filterStatus["node-2"].Message())
}

// The framework runs Filter for many nodes in parallel on one CycleState
// while informer events update the index. Run with -race.
func TestFilterParallel(t *testing.T) {
	const nodes, perNode = 40, 3
	objs := []runtime.Object{localClass("local"), makePVC("data-0", "local", "10Gi")}
	for n := 0; n < nodes; n++ {
		host := fmt.Sprintf("host-%d", n)
		objs = append(objs, makeNode(fmt.Sprintf("node-%d", n), host))
		for i := 0; i < perNode; i++ {
			objs = append(objs, makePV(fmt.Sprintf("p-%d-%d", n, i), "local", fmt.Sprintf("%dGi", 10*(i+1)), onHost(host)))
		}
	}
	e := newEnv(t, nil, objs...)
	pod := makePod("web", "data-0")

	stop := make(chan struct{})
	var churn sync.WaitGroup
	churn.Add(1)
	go func() { // relabel PVs through the API while filtering
		defer churn.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			pv := e.apiPV(fmt.Sprintf("p-%d-%d", i%nodes, i%perNode))
			pv.Labels = map[string]string{"rev": fmt.Sprint(i)}
			_, _ = e.client.CoreV1().PersistentVolumes().Update(e.ctx, pv, metav1.UpdateOptions{})
			// The fake watch channel holds 100 events and panics when full.
			time.Sleep(2 * time.Millisecond)
		}
	}()

	for round := 0; round < 5; round++ {
		cs := framework.NewCycleState()
		_, st := e.pl.PreFilter(e.ctx, cs, pod, nil)
		require.True(t, st.IsSuccess(), "%v", st)
		statuses := make([]*fwk.Status, nodes)
		var wg sync.WaitGroup
		for n := 0; n < nodes; n++ {
			wg.Add(1)
			go func(n int) {
				defer wg.Done()
				statuses[n] = e.pl.Filter(e.ctx, cs, pod, e.nodeInfo(fmt.Sprintf("node-%d", n)))
			}(n)
		}
		wg.Wait()
		for n := 0; n < nodes; n++ {
			node := fmt.Sprintf("node-%d", n)
			require.True(t, statuses[n].IsSuccess(), "%s: %v", node, statuses[n])
			assert.Equal(t, map[string]string{"data-0": fmt.Sprintf("p-%d-0", n)}, staticPlan(t, cs, node))
		}
	}
	close(stop)
	churn.Wait()
}
