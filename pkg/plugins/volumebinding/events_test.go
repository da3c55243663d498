package volumebinding

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/utils/ptr"
)

func TestEventsToRegister(t *testing.T) {
	e := newEnv(t, nil)
	evs, err := e.pl.EventsToRegister(context.Background())
	require.NoError(t, err)
	got := map[fwk.EventResource]fwk.ActionType{}
	for _, ev := range evs {
		got[ev.Event.Resource] |= ev.Event.ActionType
		if ev.Event.Resource != fwk.Node {
			assert.NotNil(t, ev.QueueingHintFn, "%s has a hint", ev.Event.Resource)
		}
	}
	assert.Equal(t, map[fwk.EventResource]fwk.ActionType{
		fwk.PersistentVolume:      fwk.Add | fwk.Update,
		fwk.PersistentVolumeClaim: fwk.Add | fwk.Update,
		fwk.StorageClass:          fwk.Add | fwk.Update,
		fwk.Node:                  fwk.Add | fwk.UpdateNodeLabel,
		fwk.CSINode:               fwk.Add | fwk.Update,
		fwk.CSIDriver:             fwk.Update,
		fwk.CSIStorageCapacity:    fwk.Add | fwk.Update,
	}, got)
}

// hintEnv has a pod "web" using claims data-0 (unbound, class local) and
// data-1 (bound to p-bound), and its ephemeral volume claim web-scratch.
func hintEnv(t *testing.T) (*testEnv, *v1.Pod) {
	e := newEnv(t, nil,
		localClass("local"),
		makePVC("data-0", "local", "10Gi"),
		makePVC("data-1", "local", "10Gi", pvcBound("p-bound")),
	)
	pod := makePod("web", "data-0", "data-1")
	pod.Spec.Volumes = append(pod.Spec.Volumes, v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{Ephemeral: &v1.EphemeralVolumeSource{}}})
	return e, pod
}

func TestHintPV(t *testing.T) {
	e, pod := hintEnv(t)
	free := makePV("p", "local", "10Gi", onHost("h1"), func(pv *v1.PersistentVolume) { pv.ResourceVersion = "1" })
	with := func(base *v1.PersistentVolume, f func(*v1.PersistentVolume)) *v1.PersistentVolume {
		c := base.DeepCopy()
		f(c)
		return c
	}
	taken := with(free, pvClaimRef("other", "x", "uid-x"))
	tests := []struct {
		name     string
		pod      *v1.Pod
		old, new *v1.PersistentVolume
		want     fwk.QueueingHint
	}{
		{"new free PV of the claim's class", pod, nil, free, fwk.Queue},
		{"new PV of another class", pod, nil, with(free, func(pv *v1.PersistentVolume) { pv.Spec.StorageClassName = "other" }), fwk.QueueSkip},
		{"new PV already claimed by another claim", pod, nil, taken, fwk.QueueSkip},
		{"new Released PV", pod, nil, with(free, pvPhase(v1.VolumeReleased)), fwk.QueueSkip},
		{"new PV being deleted", pod, nil, with(free, pvDeleting()), fwk.QueueSkip},
		{"PV freed", pod, taken, free, fwk.Queue},
		{"free PV became Available", pod, with(free, pvPhase(v1.VolumePending)), free, fwk.Queue},
		{"free PV grew", pod, free, with(free, func(pv *v1.PersistentVolume) {
			pv.Spec.Capacity[v1.ResourceStorage] = resource.MustParse("20Gi")
		}), fwk.Queue},
		{"free PV relabelled", pod, free, with(free, pvLabels("tier", "fast")), fwk.Queue},
		{"free PV moved", pod, free, with(free, onHost("h2")), fwk.Queue},
		{"free PV access modes changed", pod, free, with(free, pvModes(rwx)), fwk.Queue},
		{"free PV: irrelevant change", pod, free, with(free, func(pv *v1.PersistentVolume) {
			pv.Annotations = map[string]string{"note": "x"}
			pv.ResourceVersion = "2"
		}), fwk.QueueSkip},
		{"PV taken", pod, free, taken, fwk.QueueSkip},
		{"PV pre-bound to the pod's claim", pod, free, with(free, pvClaimRef(testNS, "data-0", "")), fwk.Queue},
		{"PV pre-bound to a same-named claim in another namespace", pod, free, with(free, pvClaimRef("other", "data-0", "")), fwk.QueueSkip},
		{"the bound claim's PV appears", pod, nil, makePV("p-bound", "local", "10Gi", pvClaimRef(testNS, "data-1", "uid-data-1")), fwk.Queue},
		{"pod without claims", makePod("plain"), nil, free, fwk.QueueSkip},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var old interface{}
			if tc.old != nil {
				old = tc.old
			}
			got, err := e.pl.hintPV(klog.Background(), tc.pod, old, tc.new)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}

	_, err := e.pl.hintPV(klog.Background(), pod, nil, &v1.Node{})
	assert.Error(t, err, "wrong type")
}

func TestHintPVC(t *testing.T) {
	e, pod := hintEnv(t)
	claim := func(ns, name string) *v1.PersistentVolumeClaim {
		c := makePVC(name, "local", "1Gi")
		c.Namespace = ns
		return c
	}
	tests := []struct {
		name     string
		old, new *v1.PersistentVolumeClaim
		want     fwk.QueueingHint
	}{
		{"pod's claim created", nil, claim(testNS, "data-0"), fwk.Queue},
		{"pod's claim updated", claim(testNS, "data-1"), claim(testNS, "data-1"), fwk.Queue},
		{"pod's ephemeral claim created", nil, claim(testNS, "web-scratch"), fwk.Queue},
		{"same name, other namespace", nil, claim("other", "data-0"), fwk.QueueSkip},
		{"another claim", nil, claim(testNS, "unrelated"), fwk.QueueSkip},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var old interface{}
			if tc.old != nil {
				old = tc.old
			}
			got, err := e.pl.hintPVC(klog.Background(), pod, old, tc.new)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestHintStorageClass(t *testing.T) {
	e, pod := hintEnv(t)
	sc := provisioningClass("csi", "csi.example.com", "z1")
	withZones := func(zones ...string) *storagev1.StorageClass {
		return provisioningClass("csi", "csi.example.com", zones...)
	}
	relabelled := sc.DeepCopy()
	relabelled.Labels = map[string]string{"a": "b"}
	tests := []struct {
		name     string
		old, new *storagev1.StorageClass
		want     fwk.QueueingHint
	}{
		{"class created", nil, sc, fwk.Queue},
		{"allowedTopologies widened", sc, withZones("z1", "z2"), fwk.Queue},
		{"allowedTopologies removed", sc, withZones(), fwk.Queue},
		{"labels changed", sc, relabelled, fwk.QueueSkip},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var old interface{}
			if tc.old != nil {
				old = tc.old
			}
			got, err := e.pl.hintStorageClass(klog.Background(), pod, old, tc.new)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestHintCapacity(t *testing.T) {
	e, pod := hintEnv(t)
	capObj := capacityFor("cap", "csi", "z1", "10Gi")
	sized := func(capacity, maxVolume string) *storagev1.CSIStorageCapacity {
		c := capObj.DeepCopy()
		c.Capacity = nil
		if capacity != "" {
			c.Capacity = ptr.To(resource.MustParse(capacity))
		}
		if maxVolume != "" {
			c.MaximumVolumeSize = ptr.To(resource.MustParse(maxVolume))
		}
		return c
	}
	tests := []struct {
		name     string
		old, new *storagev1.CSIStorageCapacity
		want     fwk.QueueingHint
	}{
		{"capacity appears", nil, capObj, fwk.Queue},
		{"capacity grows", sized("10Gi", ""), sized("20Gi", ""), fwk.Queue},
		{"capacity shrinks", sized("20Gi", ""), sized("10Gi", ""), fwk.QueueSkip},
		{"capacity unchanged", sized("10Gi", ""), sized("10Gi", ""), fwk.QueueSkip},
		{"capacity becomes known", sized("", ""), sized("10Gi", ""), fwk.Queue},
		{"capacity becomes unknown", sized("10Gi", ""), sized("", ""), fwk.QueueSkip},
		{"maximum volume size grows", sized("100Gi", "10Gi"), sized("100Gi", "20Gi"), fwk.Queue},
		{"maximum volume size shrinks while capacity grows", sized("100Gi", "20Gi"), sized("200Gi", "10Gi"), fwk.QueueSkip},
		{"maximum volume size removed: the limit is the larger capacity", sized("100Gi", "10Gi"), sized("100Gi", ""), fwk.Queue},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var old interface{}
			if tc.old != nil {
				old = tc.old
			}
			got, err := e.pl.hintCapacity(klog.Background(), pod, old, tc.new)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestHintCSIDriverAndCSINode(t *testing.T) {
	e, pod := hintEnv(t)
	drv := func(tracks bool) *storagev1.CSIDriver { return csiDriver("csi.example.com", tracks) }
	for _, tc := range []struct {
		old, new bool
		want     fwk.QueueingHint
	}{
		{true, false, fwk.Queue},
		{false, true, fwk.QueueSkip},
		{true, true, fwk.QueueSkip},
	} {
		got, err := e.pl.hintCSIDriver(klog.Background(), pod, drv(tc.old), drv(tc.new))
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, "storageCapacity %v → %v", tc.old, tc.new)
	}

	node := func(migrated string) *storagev1.CSINode {
		n := &storagev1.CSINode{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}
		if migrated != "" {
			n.Annotations = map[string]string{v1.MigratedPluginsAnnotationKey: migrated}
		}
		return n
	}
	got, err := e.pl.hintCSINode(klog.Background(), pod, nil, node(""))
	require.NoError(t, err)
	assert.Equal(t, fwk.Queue, got, "CSINode added")
	got, err = e.pl.hintCSINode(klog.Background(), pod, node(""), node("kubernetes.io/aws-ebs"))
	require.NoError(t, err)
	assert.Equal(t, fwk.Queue, got, "migration annotation changed")
	got, err = e.pl.hintCSINode(klog.Background(), pod, node("kubernetes.io/aws-ebs"), node("kubernetes.io/aws-ebs"))
	require.NoError(t, err)
	assert.Equal(t, fwk.QueueSkip, got, "unchanged")
}
