package storagescore

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/component-helpers/storage/volume"
	"k8s.io/klog/v2/ktesting"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	"k8s.io/utils/ptr"

	"github.com/berth-dev/berth/pkg/apis/config"
	"github.com/berth-dev/berth/pkg/plugins/volumebinding"
)

const gi = int64(1) << 30

func shape(points ...int32) []config.UtilizationShapePoint {
	var out []config.UtilizationShapePoint
	for i := 0; i+1 < len(points); i += 2 {
		out = append(out, config.UtilizationShapePoint{Utilization: points[i], Score: points[i+1]})
	}
	return out
}

func TestCurve(t *testing.T) {
	tests := []struct {
		name  string
		shape []config.UtilizationShapePoint
		want  map[int64]int64 // utilization → score
	}{
		{
			name:  "default: fuller is better",
			shape: config.DefaultStorageScoreShape(),
			want:  map[int64]int64{0: 0, 1: 1, 33: 33, 50: 50, 99: 99, 100: 100},
		},
		{
			name:  "emptier is better",
			shape: shape(0, 10, 100, 0),
			want:  map[int64]int64{0: 100, 25: 75, 100: 0},
		},
		{
			name:  "flat before the first point and after the last",
			shape: shape(20, 2, 80, 8),
			want:  map[int64]int64{0: 20, 20: 20, 50: 50, 80: 80, 90: 80, 100: 80},
		},
		{
			name:  "peak in the middle",
			shape: shape(0, 0, 50, 10, 100, 0),
			want:  map[int64]int64{0: 0, 25: 50, 50: 100, 75: 50, 100: 0},
		},
		{
			name:  "single point",
			shape: shape(40, 7),
			want:  map[int64]int64{0: 70, 40: 70, 100: 70},
		},
		{
			name:  "step",
			shape: shape(0, 0, 89, 0, 90, 10, 100, 10),
			want:  map[int64]int64{50: 0, 89: 0, 90: 100, 95: 100},
		},
		{
			name:  "clamped outside 0-100",
			shape: config.DefaultStorageScoreShape(),
			want:  map[int64]int64{-50: 0, -1: 0, 101: 100, 250: 100},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCurve(tc.shape)
			for u, want := range tc.want {
				assert.Equal(t, want, c.at(u), "at(%d)", u)
			}
		})
	}
}

func TestNew(t *testing.T) {
	p, err := New(context.Background(), &config.StorageScoreArgs{Shape: config.DefaultStorageScoreShape()}, nil)
	require.NoError(t, err)
	assert.Equal(t, Name, p.Name())

	_, err = New(context.Background(), &config.StorageScoreArgs{}, nil)
	assert.ErrorContains(t, err, "shape")
	_, err = New(context.Background(), &config.StorageScoreArgs{Shape: shape(50, 1, 40, 2)}, nil)
	assert.ErrorContains(t, err, "increasing")
	_, err = New(context.Background(), &config.LocalVolumeBindingArgs{}, nil)
	assert.ErrorContains(t, err, "StorageScoreArgs")
}

func static(request, capacity int64) volumebinding.StaticBinding {
	return volumebinding.StaticBinding{Request: request * gi, Capacity: capacity * gi}
}

func csc(name string, capacity, maxVolume string) *storagev1.CSIStorageCapacity {
	c := &storagev1.CSIStorageCapacity{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-system"}}
	if capacity != "" {
		c.Capacity = ptr.To(resource.MustParse(capacity))
	}
	if maxVolume != "" {
		c.MaximumVolumeSize = ptr.To(resource.MustParse(maxVolume))
	}
	return c
}

func provision(request int64, c *storagev1.CSIStorageCapacity) volumebinding.Provision {
	return volumebinding.Provision{Request: request * gi, NodeCapacity: c}
}

func TestUtilization(t *testing.T) {
	shared := csc("shared", "40Gi", "")
	tests := []struct {
		name   string
		plan   volumebinding.NodePlan
		want   int64
		wantOK bool
	}{
		{name: "empty plan", wantOK: false},
		{name: "one static binding", plan: volumebinding.NodePlan{Static: []volumebinding.StaticBinding{static(10, 20)}}, want: 50, wantOK: true},
		{name: "exact fit", plan: volumebinding.NodePlan{Static: []volumebinding.StaticBinding{static(20, 20)}}, want: 100, wantOK: true},
		{name: "static bindings sum", plan: volumebinding.NodePlan{Static: []volumebinding.StaticBinding{static(10, 20), static(5, 80)}}, want: 15, wantOK: true},
		{name: "rounds down", plan: volumebinding.NodePlan{Static: []volumebinding.StaticBinding{static(1, 3)}}, want: 33, wantOK: true},
		{name: "provision without capacity tracking", plan: volumebinding.NodePlan{Provisions: []volumebinding.Provision{provision(10, nil)}}, wantOK: false},
		{name: "provision with capacity", plan: volumebinding.NodePlan{Provisions: []volumebinding.Provision{provision(10, csc("c", "40Gi", ""))}}, want: 25, wantOK: true},
		{name: "provision: maximumVolumeSize is the limit", plan: volumebinding.NodePlan{Provisions: []volumebinding.Provision{provision(10, csc("c", "1Ti", "20Gi"))}}, want: 50, wantOK: true},
		{name: "two provisions from one capacity count it once", plan: volumebinding.NodePlan{Provisions: []volumebinding.Provision{provision(10, shared), provision(10, shared)}}, want: 50, wantOK: true},
		{name: "two provisions from two capacities", plan: volumebinding.NodePlan{Provisions: []volumebinding.Provision{provision(10, csc("a", "40Gi", "")), provision(10, csc("b", "60Gi", ""))}}, want: 20, wantOK: true},
		{
			name: "mixed: static and tracked provision",
			plan: volumebinding.NodePlan{Static: []volumebinding.StaticBinding{static(10, 20)}, Provisions: []volumebinding.Provision{provision(10, csc("c", "40Gi", ""))}},
			want: 33, wantOK: true,
		},
		{
			name: "mixed: untracked provision is ignored",
			plan: volumebinding.NodePlan{Static: []volumebinding.StaticBinding{static(10, 20)}, Provisions: []volumebinding.Provision{provision(30, nil)}},
			want: 50, wantOK: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Utilization(&tc.plan)
			assert.Equal(t, tc.wantOK, ok)
			if tc.wantOK {
				assert.Equal(t, tc.want, got)
			}
		})
	}
}

func TestNormalizeScore(t *testing.T) {
	pl := &StorageScore{curve: newCurve(config.DefaultStorageScoreShape())}
	tests := []struct {
		name       string
		in, expect []int64
	}{
		{"no neutral node", []int64{10, 90, 0}, []int64{10, 90, 0}},
		{"neutral nodes get the mean of the others", []int64{neutral, 80, 40, neutral}, []int64{60, 80, 40, 60}},
		{"mean rounds down", []int64{neutral, 1, 2}, []int64{1, 1, 2}},
		{"all neutral: middle score", []int64{neutral, neutral}, []int64{50, 50}},
		{"empty", []int64{}, []int64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			scores := make(fwk.NodeScoreList, len(tc.in))
			for i, s := range tc.in {
				scores[i] = fwk.NodeScore{Name: string(rune('a' + i)), Score: s}
			}
			require.True(t, pl.NormalizeScore(context.Background(), framework.NewCycleState(), nil, scores).IsSuccess())
			got := make([]int64, len(scores))
			for i := range scores {
				got[i] = scores[i].Score
			}
			assert.Equal(t, tc.expect, got)
		})
	}
}

// --- Score through a cycle state made by LocalVolumeBinding ---

type vbEnv struct {
	ctx context.Context
	vb  fwk.Plugin
	pf  fwk.PreFilterPlugin
	f   fwk.FilterPlugin
}

// newVB starts LocalVolumeBinding over a fake API server holding objs.
func newVB(t *testing.T, objs ...runtime.Object) *vbEnv {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	client := fake.NewSimpleClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	fh, err := frameworkruntime.NewFramework(ctx, nil, nil,
		frameworkruntime.WithClientSet(client), frameworkruntime.WithInformerFactory(factory))
	require.NoError(t, err)
	vb, err := volumebinding.New(ctx, &config.LocalVolumeBindingArgs{BindTimeoutSeconds: config.DefaultBindTimeoutSeconds, BindMode: config.DefaultBindMode}, fh)
	require.NoError(t, err)
	t.Cleanup(func() {
		cancel()
		factory.Shutdown()
	})
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	e := &vbEnv{ctx: ctx, vb: vb, pf: vb.(fwk.PreFilterPlugin), f: vb.(fwk.FilterPlugin)}
	// PreFilter fails with an Error until the plugin's own handlers synced.
	probe := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "ns"}, Spec: v1.PodSpec{Volumes: []v1.Volume{{
		Name: "v", VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "probe"}},
	}}}}
	require.Eventually(t, func() bool {
		_, st := e.pf.PreFilter(ctx, framework.NewCycleState(), probe, nil)
		return st.Code() != fwk.Error
	}, 10*time.Second, time.Millisecond)
	return e
}

// filter runs PreFilter and Filter on the nodes; it returns the cycle state
// and the nodes that passed.
func (e *vbEnv) filter(t *testing.T, pod *v1.Pod, nodes ...*v1.Node) (fwk.CycleState, []fwk.NodeInfo) {
	t.Helper()
	cs := framework.NewCycleState()
	_, st := e.pf.PreFilter(e.ctx, cs, pod, nil)
	if st.Code() == fwk.Skip {
		return cs, nil
	}
	require.True(t, st.IsSuccess(), "PreFilter: %v", st)
	var passed []fwk.NodeInfo
	for _, n := range nodes {
		ni := framework.NewNodeInfo()
		ni.SetNode(n)
		if e.f.Filter(e.ctx, cs, pod, ni).IsSuccess() {
			passed = append(passed, ni)
		}
	}
	return cs, passed
}

func node(name string, labels ...string) *v1.Node {
	l := map[string]string{v1.LabelHostname: name}
	for i := 0; i+1 < len(labels); i += 2 {
		l[labels[i]] = labels[i+1]
	}
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
}

func localPV(name, host, size string) *v1.PersistentVolume {
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: "1"},
		Spec: v1.PersistentVolumeSpec{
			Capacity:         v1.ResourceList{v1.ResourceStorage: resource.MustParse(size)},
			StorageClassName: "local",
			AccessModes:      []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			NodeAffinity: &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
				MatchExpressions: []v1.NodeSelectorRequirement{{Key: v1.LabelHostname, Operator: v1.NodeSelectorOpIn, Values: []string{host}}},
			}}}},
		},
		Status: v1.PersistentVolumeStatus{Phase: v1.VolumeAvailable},
	}
}

func claim(name, class, size string) *v1.PersistentVolumeClaim {
	return &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name)},
		Spec: v1.PersistentVolumeClaimSpec{
			StorageClassName: ptr.To(class),
			AccessModes:      []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			Resources:        v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse(size)}},
		},
	}
}

func podWith(claims ...string) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"}}
	for _, c := range claims {
		p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: c, VolumeSource: v1.VolumeSource{
			PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: c}}})
	}
	return p
}

func TestScoreThroughCycleState(t *testing.T) {
	wffc := ptr.To(storagev1.VolumeBindingWaitForFirstConsumer)
	objs := []runtime.Object{
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "local"}, Provisioner: volume.NotSupportedProvisioner, VolumeBindingMode: wffc},
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "csi"}, Provisioner: "csi.example.com", VolumeBindingMode: wffc},
		&storagev1.CSIDriver{ObjectMeta: metav1.ObjectMeta{Name: "csi.example.com"}, Spec: storagev1.CSIDriverSpec{StorageCapacity: ptr.To(true)}},
		&storagev1.CSIStorageCapacity{
			ObjectMeta:       metav1.ObjectMeta{Name: "cap-z1", Namespace: "kube-system"},
			StorageClassName: "csi",
			NodeTopology:     &metav1.LabelSelector{MatchLabels: map[string]string{"zone": "z1"}},
			Capacity:         ptr.To(resource.MustParse("40Gi")),
		},
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "untracked"}, Provisioner: "other.example.com", VolumeBindingMode: wffc},
		claim("data-0", "local", "10Gi"),
		claim("blob", "untracked", "10Gi"),
		claim("scratch", "csi", "10Gi"),
		localPV("p-tight", "tight", "20Gi"),
		localPV("p-loose", "loose", "100Gi"),
		localPV("p-exact", "exact", "10Gi"),
	}
	tight, loose, exact, none := node("tight"), node("loose"), node("exact"), node("none")
	zoned := node("zoned", "zone", "z1")
	e := newVB(t, objs...)
	pl, err := New(e.ctx, &config.StorageScoreArgs{Shape: config.DefaultStorageScoreShape()}, nil)
	require.NoError(t, err)
	ss := pl.(*StorageScore)

	t.Run("static bindings: tightest fit scores highest", func(t *testing.T) {
		pod := podWith("data-0")
		cs, passed := e.filter(t, pod, tight, loose, exact, none)
		require.Len(t, passed, 3)
		require.True(t, ss.PreScore(e.ctx, cs, pod, passed).IsSuccess())
		scores := fwk.NodeScoreList{}
		for _, ni := range append(passed, nodeInfo(none)) {
			s, st := ss.Score(e.ctx, cs, pod, ni)
			require.True(t, st.IsSuccess())
			scores = append(scores, fwk.NodeScore{Name: ni.Node().Name, Score: s})
		}
		assert.Equal(t, fwk.NodeScoreList{
			{Name: "tight", Score: 50},
			{Name: "loose", Score: 10},
			{Name: "exact", Score: 100},
			{Name: "none", Score: neutral}, // not evaluated by Filter
		}, scores)
		require.True(t, ss.NormalizeScore(e.ctx, cs, pod, scores).IsSuccess())
		assert.Equal(t, int64((50+10+100)/3), scores[3].Score)
	})

	t.Run("provisioning with capacity tracking: scored against the capacity", func(t *testing.T) {
		pod := podWith("scratch")
		cs, passed := e.filter(t, pod, zoned, none)
		require.Len(t, passed, 1, "no capacity reaches node none")
		s, st := ss.Score(e.ctx, cs, pod, passed[0])
		require.True(t, st.IsSuccess())
		assert.Equal(t, int64(25), s, "10Gi of a 40Gi capacity")
	})

	t.Run("provisioning without capacity tracking: neutral, then the mean", func(t *testing.T) {
		pod := podWith("blob", "data-0")
		cs, passed := e.filter(t, pod, tight, loose)
		require.Len(t, passed, 2)
		scores := fwk.NodeScoreList{}
		for _, ni := range passed {
			s, st := ss.Score(e.ctx, cs, pod, ni)
			require.True(t, st.IsSuccess())
			scores = append(scores, fwk.NodeScore{Name: ni.Node().Name, Score: s})
		}
		// Only the static binding has a known capacity.
		assert.Equal(t, fwk.NodeScoreList{{Name: "tight", Score: 50}, {Name: "loose", Score: 10}}, scores)

		pod = podWith("blob")
		cs, passed = e.filter(t, pod, tight, loose)
		require.Len(t, passed, 2)
		require.True(t, ss.PreScore(e.ctx, cs, pod, passed).IsSuccess())
		scores = fwk.NodeScoreList{}
		for _, ni := range passed {
			s, st := ss.Score(e.ctx, cs, pod, ni)
			require.True(t, st.IsSuccess())
			scores = append(scores, fwk.NodeScore{Name: ni.Node().Name, Score: s})
		}
		assert.Equal(t, fwk.NodeScoreList{{Name: "tight", Score: neutral}, {Name: "loose", Score: neutral}}, scores)
		require.True(t, ss.NormalizeScore(e.ctx, cs, pod, scores).IsSuccess())
		assert.Equal(t, fwk.NodeScoreList{{Name: "tight", Score: 50}, {Name: "loose", Score: 50}}, scores)
	})

	t.Run("pod without claims: PreScore skips", func(t *testing.T) {
		pod := podWith()
		cs, _ := e.filter(t, pod, tight)
		assert.Equal(t, fwk.Skip, ss.PreScore(e.ctx, cs, pod, nil).Code())
		s, st := ss.Score(e.ctx, cs, pod, nodeInfo(tight))
		require.True(t, st.IsSuccess())
		assert.Equal(t, int64(neutral), s)
	})

	t.Run("empty cycle state: neutral", func(t *testing.T) {
		cs := framework.NewCycleState()
		assert.Equal(t, fwk.Skip, ss.PreScore(e.ctx, cs, podWith("data-0"), nil).Code())
		s, st := ss.Score(e.ctx, cs, podWith("data-0"), nodeInfo(tight))
		require.True(t, st.IsSuccess())
		assert.Equal(t, int64(neutral), s)
	})
}

func nodeInfo(n *v1.Node) fwk.NodeInfo {
	ni := framework.NewNodeInfo()
	ni.SetNode(n)
	return ni
}
