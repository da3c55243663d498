package volumebinding

// Test fixtures: a fake API server (client-go's fake clientset, with
// resourceVersions and optimistic concurrency added so the plugin's
// version checks are exercised), shared informers, a framework handle from
// the real framework runtime, and object builders.

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/events"
	"k8s.io/component-helpers/storage/volume"
	"k8s.io/klog/v2/ktesting"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	"k8s.io/utils/ptr"

	"github.com/berth-dev/berth/pkg/apis/config"
)

const (
	testNS    = "ns"
	zoneLabel = "topology.kubernetes.io/zone"
	gi        = int64(1) << 30
)

// fakeAPI makes the fake clientset behave like an API server for
// resourceVersions: every create and update gets a new resourceVersion, and
// an update carrying a stale one fails with a Conflict. Objects without a
// UID get one on create.
func fakeAPI(client *fake.Clientset) {
	var mu sync.Mutex
	rv := int64(100)
	tracker := client.Tracker()
	client.PrependReactor("create", "*", func(a clienttesting.Action) (bool, runtime.Object, error) {
		obj := a.(clienttesting.CreateAction).GetObject().DeepCopyObject()
		m, err := meta.Accessor(obj)
		if err != nil {
			return true, nil, err
		}
		if m.GetName() == "" {
			return false, nil, nil // generateName: leave it to the default reactor
		}
		mu.Lock()
		defer mu.Unlock()
		rv++
		m.SetResourceVersion(strconv.FormatInt(rv, 10))
		if m.GetUID() == "" {
			m.SetUID(types.UID(fmt.Sprintf("uid-%s-%s", m.GetNamespace(), m.GetName())))
		}
		if err := tracker.Create(a.GetResource(), obj, a.GetNamespace()); err != nil {
			return true, nil, err
		}
		return true, obj.DeepCopyObject(), nil
	})
	client.PrependReactor("update", "*", func(a clienttesting.Action) (bool, runtime.Object, error) {
		obj := a.(clienttesting.UpdateAction).GetObject().DeepCopyObject()
		m, err := meta.Accessor(obj)
		if err != nil {
			return true, nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		cur, err := tracker.Get(a.GetResource(), a.GetNamespace(), m.GetName())
		if err != nil {
			return true, nil, err
		}
		cm, _ := meta.Accessor(cur)
		if m.GetResourceVersion() != "" && m.GetResourceVersion() != cm.GetResourceVersion() {
			return true, nil, apierrors.NewConflict(a.GetResource().GroupResource(), m.GetName(),
				fmt.Errorf("resourceVersion %s is stale (current %s)", m.GetResourceVersion(), cm.GetResourceVersion()))
		}
		rv++
		m.SetResourceVersion(strconv.FormatInt(rv, 10))
		m.SetUID(cm.GetUID())
		if err := tracker.Update(a.GetResource(), obj, a.GetNamespace()); err != nil {
			return true, nil, err
		}
		return true, obj.DeepCopyObject(), nil
	})
}

// testEnv is a plugin wired to informers over a fake API server.
type testEnv struct {
	t        *testing.T
	ctx      context.Context
	client   *fake.Clientset
	factory  informers.SharedInformerFactory
	handle   fwk.Handle
	pl       *LocalVolumeBinding
	recorder *events.FakeRecorder
}

// newEnv creates objs in a fake API server, builds the plugin (default args
// when args is nil), starts the informers and waits until the plugin's own
// event handlers have synced.
func newEnv(t *testing.T, args *config.LocalVolumeBindingArgs, objs ...runtime.Object) *testEnv {
	t.Helper()
	e := newUnstartedEnv(t, args, objs...)
	e.start()
	return e
}

func newUnstartedEnv(t *testing.T, args *config.LocalVolumeBindingArgs, objs ...runtime.Object) *testEnv {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	client := fake.NewSimpleClientset()
	fakeAPI(client)
	factory := informers.NewSharedInformerFactory(client, 0)
	recorder := events.NewFakeRecorder(1000)
	fh, err := frameworkruntime.NewFramework(ctx, nil, nil,
		frameworkruntime.WithClientSet(client),
		frameworkruntime.WithInformerFactory(factory),
		frameworkruntime.WithEventRecorder(recorder),
	)
	require.NoError(t, err)
	if args == nil {
		args = &config.LocalVolumeBindingArgs{BindTimeoutSeconds: config.DefaultBindTimeoutSeconds, BindMode: config.DefaultBindMode}
	}
	p, err := New(ctx, args, fh)
	require.NoError(t, err)
	e := &testEnv{t: t, ctx: ctx, client: client, factory: factory, handle: fh, pl: p.(*LocalVolumeBinding), recorder: recorder}
	t.Cleanup(func() {
		cancel()
		factory.Shutdown()
	})
	for _, o := range objs {
		e.create(o)
	}
	return e
}

func (e *testEnv) start() {
	e.t.Helper()
	e.factory.Start(e.ctx.Done())
	for typ, ok := range e.factory.WaitForCacheSync(e.ctx.Done()) {
		require.True(e.t, ok, "informer for %v did not sync", typ)
	}
	require.Eventually(e.t, e.pl.hasSynced, 10*time.Second, time.Millisecond, "plugin handlers did not sync")
}

// create writes an object to the fake API server.
func (e *testEnv) create(o runtime.Object) runtime.Object {
	e.t.Helper()
	ctx := e.ctx
	c := e.client
	var out runtime.Object
	var err error
	switch o := o.(type) {
	case *v1.Node:
		out, err = c.CoreV1().Nodes().Create(ctx, o, metav1.CreateOptions{})
	case *v1.PersistentVolume:
		out, err = c.CoreV1().PersistentVolumes().Create(ctx, o, metav1.CreateOptions{})
	case *v1.PersistentVolumeClaim:
		out, err = c.CoreV1().PersistentVolumeClaims(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *v1.Pod:
		out, err = c.CoreV1().Pods(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *storagev1.StorageClass:
		out, err = c.StorageV1().StorageClasses().Create(ctx, o, metav1.CreateOptions{})
	case *storagev1.CSIDriver:
		out, err = c.StorageV1().CSIDrivers().Create(ctx, o, metav1.CreateOptions{})
	case *storagev1.CSIStorageCapacity:
		out, err = c.StorageV1().CSIStorageCapacities(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
	case *storagev1.CSINode:
		out, err = c.StorageV1().CSINodes().Create(ctx, o, metav1.CreateOptions{})
	default:
		e.t.Fatalf("create: unsupported type %T", o)
	}
	require.NoError(e.t, err)
	return out
}

// apiPV reads a PV from the fake API server.
func (e *testEnv) apiPV(name string) *v1.PersistentVolume {
	e.t.Helper()
	pv, err := e.client.CoreV1().PersistentVolumes().Get(e.ctx, name, metav1.GetOptions{})
	require.NoError(e.t, err)
	return pv
}

func (e *testEnv) apiPVC(ns, name string) *v1.PersistentVolumeClaim {
	e.t.Helper()
	pvc, err := e.client.CoreV1().PersistentVolumeClaims(ns).Get(e.ctx, name, metav1.GetOptions{})
	require.NoError(e.t, err)
	return pvc
}

// nodeInfo returns a NodeInfo for a node from the informer cache.
func (e *testEnv) nodeInfo(name string) fwk.NodeInfo {
	e.t.Helper()
	n, err := e.pl.nodeLister.Get(name)
	require.NoError(e.t, err)
	ni := framework.NewNodeInfo()
	ni.SetNode(n)
	return ni
}

// cycle runs PreFilter and then Filter on the given nodes, like a
// scheduling cycle. Filter statuses are returned per node (absent when
// PreFilter failed or skipped).
type cycleResult struct {
	state        fwk.CycleState
	preResult    *fwk.PreFilterResult
	preStatus    *fwk.Status
	filterStatus map[string]*fwk.Status
}

func (e *testEnv) cycle(pod *v1.Pod, nodes ...string) *cycleResult {
	e.t.Helper()
	r := &cycleResult{state: framework.NewCycleState(), filterStatus: map[string]*fwk.Status{}}
	r.preResult, r.preStatus = e.pl.PreFilter(e.ctx, r.state, pod, nil)
	if !r.preStatus.IsSuccess() {
		return r
	}
	for _, n := range nodes {
		r.filterStatus[n] = e.pl.Filter(e.ctx, r.state, pod, e.nodeInfo(n))
	}
	return r
}

// staticPlan returns claim name → PV name of the plan made for node.
func staticPlan(t *testing.T, cs fwk.CycleState, node string) map[string]string {
	t.Helper()
	plan, ok := PlanFor(cs, node)
	require.True(t, ok, "no plan for node %s", node)
	out := map[string]string{}
	for _, b := range plan.Static {
		out[b.PVC.Name] = b.PV.Name
	}
	return out
}

// waitFor polls cond until it holds (or fails the test after 10s).
func (e *testEnv) waitFor(cond func() bool, msg string, args ...interface{}) {
	e.t.Helper()
	require.Eventually(e.t, cond, 10*time.Second, 5*time.Millisecond, fmt.Sprintf(msg, args...))
}

// waitForIndex waits until the plugin's index holds the PV's API version
// (informer caught up).
func (e *testEnv) waitForIndex(name string) {
	e.t.Helper()
	want := e.apiPV(name).ResourceVersion
	e.waitFor(func() bool {
		pv, ok := e.pl.index.APIObject(name)
		return ok && pv.ResourceVersion == want
	}, "index did not catch up with PV %s", name)
}

// --- object builders ---

type pvOption func(*v1.PersistentVolume)

// makePV builds an Available, RWO, Filesystem PV of a class; pin it with
// onHost.
func makePV(name, class string, size string, opts ...pvOption) *v1.PersistentVolume {
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PersistentVolumeSpec{
			Capacity:                      v1.ResourceList{v1.ResourceStorage: resource.MustParse(size)},
			StorageClassName:              class,
			AccessModes:                   []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimDelete,
			PersistentVolumeSource: v1.PersistentVolumeSource{
				Local: &v1.LocalVolumeSource{Path: "/mnt/" + name},
			},
		},
		Status: v1.PersistentVolumeStatus{Phase: v1.VolumeAvailable},
	}
	for _, o := range opts {
		o(pv)
	}
	return pv
}

func onHost(hosts ...string) pvOption {
	return func(pv *v1.PersistentVolume) {
		pv.Spec.NodeAffinity = &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
			MatchExpressions: []v1.NodeSelectorRequirement{{Key: v1.LabelHostname, Operator: v1.NodeSelectorOpIn, Values: hosts}},
		}}}}
	}
}

func pvLabels(kv ...string) pvOption {
	return func(pv *v1.PersistentVolume) {
		pv.Labels = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			pv.Labels[kv[i]] = kv[i+1]
		}
	}
}

func pvModes(modes ...v1.PersistentVolumeAccessMode) pvOption {
	return func(pv *v1.PersistentVolume) { pv.Spec.AccessModes = modes }
}

func pvBlock() pvOption {
	return func(pv *v1.PersistentVolume) { pv.Spec.VolumeMode = ptr.To(v1.PersistentVolumeBlock) }
}

func pvVAC(name string) pvOption {
	return func(pv *v1.PersistentVolume) { pv.Spec.VolumeAttributesClassName = ptr.To(name) }
}

// pvClaimRef pre-binds the PV to a claim (uid may be empty, as an admin
// writes it).
func pvClaimRef(ns, name string, uid types.UID) pvOption {
	return func(pv *v1.PersistentVolume) {
		pv.Spec.ClaimRef = &v1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: ns, Name: name, UID: uid}
	}
}

func pvPhase(p v1.PersistentVolumePhase) pvOption {
	return func(pv *v1.PersistentVolume) { pv.Status.Phase = p }
}

func pvDeleting() pvOption {
	return func(pv *v1.PersistentVolume) {
		pv.DeletionTimestamp = &metav1.Time{Time: time.Now()}
		pv.Finalizers = []string{"kubernetes.io/pv-protection"}
	}
}

type pvcOption func(*v1.PersistentVolumeClaim)

// makePVC builds an unbound RWO Filesystem claim with a fixed UID.
func makePVC(name, class, size string, opts ...pvcOption) *v1.PersistentVolumeClaim {
	pvc := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS, UID: types.UID("uid-" + name)},
		Spec: v1.PersistentVolumeClaimSpec{
			AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			Resources:   v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse(size)}},
		},
		Status: v1.PersistentVolumeClaimStatus{Phase: v1.ClaimPending},
	}
	if class != "" {
		pvc.Spec.StorageClassName = ptr.To(class)
	}
	for _, o := range opts {
		o(pvc)
	}
	return pvc
}

func pvcSelector(kv ...string) pvcOption {
	return func(pvc *v1.PersistentVolumeClaim) {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		pvc.Spec.Selector = &metav1.LabelSelector{MatchLabels: m}
	}
}

func pvcModes(modes ...v1.PersistentVolumeAccessMode) pvcOption {
	return func(pvc *v1.PersistentVolumeClaim) { pvc.Spec.AccessModes = modes }
}

func pvcBlock() pvcOption {
	return func(pvc *v1.PersistentVolumeClaim) { pvc.Spec.VolumeMode = ptr.To(v1.PersistentVolumeBlock) }
}

func pvcVAC(name string) pvcOption {
	return func(pvc *v1.PersistentVolumeClaim) { pvc.Spec.VolumeAttributesClassName = ptr.To(name) }
}

// pvcBound marks the claim bound to a PV, as the PV controller leaves it.
func pvcBound(pvName string) pvcOption {
	return func(pvc *v1.PersistentVolumeClaim) {
		pvc.Spec.VolumeName = pvName
		metav1.SetMetaDataAnnotation(&pvc.ObjectMeta, volume.AnnBindCompleted, "yes")
		pvc.Status.Phase = v1.ClaimBound
	}
}

func pvcAnnotation(k, v string) pvcOption {
	return func(pvc *v1.PersistentVolumeClaim) { metav1.SetMetaDataAnnotation(&pvc.ObjectMeta, k, v) }
}

// makePod builds a pod in testNS using the named claims.
func makePod(name string, claims ...string) *v1.Pod {
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS, UID: types.UID("uid-pod-" + name)},
		Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: "busybox"}}},
	}
	for i, c := range claims {
		pod.Spec.Volumes = append(pod.Spec.Volumes, v1.Volume{
			Name:         fmt.Sprintf("vol-%d", i),
			VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: c}},
		})
	}
	return pod
}

// makeNode builds a node whose hostname label may differ from its name;
// extra are label key/value pairs.
func makeNode(name, host string, extra ...string) *v1.Node {
	labels := map[string]string{}
	if host != "" {
		labels[v1.LabelHostname] = host
	}
	for i := 0; i+1 < len(extra); i += 2 {
		labels[extra[i]] = extra[i+1]
	}
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

// localClass is a WaitForFirstConsumer class without provisioner, as for
// local static volumes.
func localClass(name string) *storagev1.StorageClass {
	return &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: name},
		Provisioner:       volume.NotSupportedProvisioner,
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
	}
}

func immediateClass(name string) *storagev1.StorageClass {
	return &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: name},
		Provisioner:       "csi.example.com",
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingImmediate),
	}
}

// provisioningClass is a WaitForFirstConsumer class with a provisioner,
// optionally restricted to zones.
func provisioningClass(name, provisioner string, zones ...string) *storagev1.StorageClass {
	sc := &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: name},
		Provisioner:       provisioner,
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
	}
	if len(zones) > 0 {
		sc.AllowedTopologies = []v1.TopologySelectorTerm{{
			MatchLabelExpressions: []v1.TopologySelectorLabelRequirement{{Key: zoneLabel, Values: zones}},
		}}
	}
	return sc
}

func csiDriver(name string, storageCapacity bool) *storagev1.CSIDriver {
	return &storagev1.CSIDriver{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       storagev1.CSIDriverSpec{StorageCapacity: ptr.To(storageCapacity)},
	}
}

// capacityFor is a CSIStorageCapacity of a class for the nodes with the
// given zone label.
func capacityFor(name, class, zone, size string) *storagev1.CSIStorageCapacity {
	q := resource.MustParse(size)
	return &storagev1.CSIStorageCapacity{
		ObjectMeta:       metav1.ObjectMeta{Name: name, Namespace: "kube-system"},
		StorageClassName: class,
		NodeTopology:     &metav1.LabelSelector{MatchLabels: map[string]string{zoneLabel: zone}},
		Capacity:         &q,
	}
}
