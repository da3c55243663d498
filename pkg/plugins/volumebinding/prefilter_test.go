package volumebinding

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/component-helpers/storage/volume"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"
)

func TestPreFilter(t *testing.T) {
	ephemeralPod := makePod("web")
	ephemeralPod.Spec.Volumes = []v1.Volume{{Name: "scratch", VolumeSource: v1.VolumeSource{Ephemeral: &v1.EphemeralVolumeSource{}}}}
	emptyDirPod := makePod("web")
	emptyDirPod.Spec.Volumes = []v1.Volume{{Name: "tmp", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}

	nodes := []runtime.Object{
		makeNode("node-1", "host-1"),
		makeNode("node-2", "host-2"),
		makeNode("node-3", "host-1"), // shares node-1's hostname label
	}
	tests := []struct {
		name        string
		objs        []runtime.Object
		pod         *v1.Pod
		wantCode    fwk.Code
		wantMsg     []string // substrings of the status message
		wantNodes   sets.Set[string]
		wantDelayed int
	}{
		{
			name:     "pod without volumes",
			pod:      makePod("web"),
			wantCode: fwk.Skip,
		},
		{
			name:     "pod with only an emptyDir",
			pod:      emptyDirPod,
			wantCode: fwk.Skip,
		},
		{
			name:     "missing claim",
			pod:      makePod("web", "data-0"),
			wantCode: fwk.UnschedulableAndUnresolvable,
			wantMsg:  []string{"PersistentVolumeClaim ns/data-0 not found"},
		},
		{
			name:     "missing generic ephemeral claim",
			pod:      ephemeralPod,
			wantCode: fwk.UnschedulableAndUnresolvable,
			wantMsg:  []string{"ephemeral volume controller", "ns/web-scratch"},
		},
		{
			name: "lost claim",
			objs: []runtime.Object{localClass("local"), makePVC("data-0", "local", "10Gi", func(c *v1.PersistentVolumeClaim) {
				c.Spec.VolumeName = "pv-gone"
				c.Status.Phase = v1.ClaimLost
			})},
			pod:      makePod("web", "data-0"),
			wantCode: fwk.UnschedulableAndUnresolvable,
			wantMsg:  []string{"ns/data-0 is Lost", "pv-gone"},
		},
		{
			name: "terminating claim",
			objs: []runtime.Object{localClass("local"), makePVC("data-0", "local", "10Gi", func(c *v1.PersistentVolumeClaim) {
				c.DeletionTimestamp = &metav1.Time{Time: time.Now()}
				c.Finalizers = []string{"kubernetes.io/pvc-protection"}
			})},
			pod:      makePod("web", "data-0"),
			wantCode: fwk.UnschedulableAndUnresolvable,
			wantMsg:  []string{"ns/data-0 is being deleted"},
		},
		{
			name:     "unbound Immediate claim",
			objs:     []runtime.Object{immediateClass("fast"), localClass("local"), makePVC("data-0", "local", "1Gi"), makePVC("data-1", "fast", "10Gi")},
			pod:      makePod("web", "data-0", "data-1"),
			wantCode: fwk.UnschedulableAndUnresolvable,
			wantMsg:  []string{"unbound immediate", "ns/data-1"},
		},
		{
			name:     "claim without a class is bound by the PV controller",
			objs:     []runtime.Object{makePVC("data-0", "", "1Gi")},
			pod:      makePod("web", "data-0"),
			wantCode: fwk.UnschedulableAndUnresolvable,
			wantMsg:  []string{"unbound immediate", "ns/data-0"},
		},
		{
			name:     "missing StorageClass",
			objs:     []runtime.Object{makePVC("data-0", "nope", "10Gi")},
			pod:      makePod("web", "data-0"),
			wantCode: fwk.UnschedulableAndUnresolvable,
			wantMsg:  []string{`StorageClass "nope"`, "ns/data-0", "not found"},
		},
		{
			name: "invalid claim selector",
			objs: []runtime.Object{localClass("local"), makePVC("data-0", "local", "10Gi", func(c *v1.PersistentVolumeClaim) {
				c.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: "Bogus"}}}
			})},
			pod:      makePod("web", "data-0"),
			wantCode: fwk.UnschedulableAndUnresolvable,
			wantMsg:  []string{"ns/data-0", "invalid spec.selector"},
		},
		{
			name:        "unbound WaitForFirstConsumer claim: no pinning",
			objs:        []runtime.Object{localClass("local"), makePVC("data-0", "local", "10Gi"), makePV("pv-1", "local", "10Gi", onHost("host-1"))},
			pod:         makePod("web", "data-0"),
			wantCode:    fwk.Success,
			wantDelayed: 1,
		},
		{
			name: "bound PV pinned by hostname: nodes found by label, not by name",
			objs: []runtime.Object{
				localClass("local"),
				makePVC("data-0", "local", "10Gi", pvcBound("pv-1")),
				makePV("pv-1", "local", "10Gi", onHost("host-1"), pvClaimRef(testNS, "data-0", "uid-data-0"), pvPhase(v1.VolumeBound)),
			},
			pod:       makePod("web", "data-0"),
			wantCode:  fwk.Success,
			wantNodes: sets.New("node-1", "node-3"),
		},
		{
			name: "two bound PVs on different hosts",
			objs: []runtime.Object{
				localClass("local"),
				makePVC("data-0", "local", "10Gi", pvcBound("pv-1")),
				makePVC("data-1", "local", "10Gi", pvcBound("pv-2")),
				makePV("pv-1", "local", "10Gi", onHost("host-1"), pvClaimRef(testNS, "data-0", "uid-data-0"), pvPhase(v1.VolumeBound)),
				makePV("pv-2", "local", "10Gi", onHost("host-2"), pvClaimRef(testNS, "data-1", "uid-data-1"), pvPhase(v1.VolumeBound)),
			},
			pod:      makePod("web", "data-0", "data-1"),
			wantCode: fwk.UnschedulableAndUnresolvable,
			wantMsg:  []string{"no node has the hostname", "pv-2"},
		},
		{
			name: "bound PV pinned to a hostname no node has",
			objs: []runtime.Object{
				localClass("local"),
				makePVC("data-0", "local", "10Gi", pvcBound("pv-1")),
				makePV("pv-1", "local", "10Gi", onHost("host-gone"), pvClaimRef(testNS, "data-0", "uid-data-0"), pvPhase(v1.VolumeBound)),
			},
			pod:      makePod("web", "data-0"),
			wantCode: fwk.UnschedulableAndUnresolvable,
			wantMsg:  []string{"no node has the hostname", "pv-1", "host-gone"},
		},
		{
			name: "bound network PV: no pinning",
			objs: []runtime.Object{
				localClass("local"),
				makePVC("data-0", "local", "10Gi", pvcBound("pv-1")),
				makePV("pv-1", "local", "10Gi", pvClaimRef(testNS, "data-0", "uid-data-0"), pvPhase(v1.VolumeBound)),
			},
			pod:      makePod("web", "data-0"),
			wantCode: fwk.Success,
		},
		{
			name: "PV pre-bound by an admin pins to its host",
			objs: []runtime.Object{
				localClass("local"),
				makePVC("data-0", "local", "10Gi"),
				makePV("pv-1", "local", "10Gi", onHost("host-2"), pvClaimRef(testNS, "data-0", "")),
			},
			pod:         makePod("web", "data-0"),
			wantCode:    fwk.Success,
			wantNodes:   sets.New("node-2"),
			wantDelayed: 1,
		},
		{
			name: "claim being provisioned for a node pins to it",
			objs: []runtime.Object{
				provisioningClass("csi", "csi.example.com"),
				makePVC("data-0", "csi", "10Gi", pvcAnnotation(volume.AnnSelectedNode, "node-2")),
			},
			pod:         makePod("web", "data-0"),
			wantCode:    fwk.Success,
			wantNodes:   sets.New("node-2"),
			wantDelayed: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, append(append([]runtime.Object{}, nodes...), tc.objs...)...)
			r := e.cycle(tc.pod)
			assert.Equal(t, tc.wantCode, r.preStatus.Code(), "status: %v", r.preStatus)
			for _, m := range tc.wantMsg {
				assert.Contains(t, r.preStatus.Message(), m)
			}
			if tc.wantNodes == nil {
				assert.Nil(t, r.preResult)
			} else {
				require.NotNil(t, r.preResult)
				assert.Equal(t, tc.wantNodes, r.preResult.NodeNames)
			}
			if tc.wantCode == fwk.Success || tc.wantCode == fwk.Skip {
				assert.Equal(t, tc.wantDelayed > 0, HasUnboundClaims(r.state))
			}
		})
	}
}

// Until the plugin's handlers have seen the informers' initial lists, the
// index may be missing volumes: PreFilter must not decide anything.
func TestPreFilterNotSynced(t *testing.T) {
	e := newUnstartedEnv(t, nil, localClass("local"), makePVC("data-0", "local", "1Gi"))
	_, st := e.pl.PreFilter(e.ctx, framework.NewCycleState(), makePod("web", "data-0"), nil)
	assert.Equal(t, fwk.Error, st.Code())
	assert.Contains(t, st.Message(), "not synced")

	e.start()
	_, st = e.pl.PreFilter(e.ctx, framework.NewCycleState(), makePod("web", "data-0"), nil)
	assert.True(t, st.IsSuccess(), "%v", st)
}
