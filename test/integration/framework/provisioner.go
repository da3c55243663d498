package framework

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// FakeProvisionerOptions tune a FakeProvisioner.
type FakeProvisionerOptions struct {
	// Name is the provisioner name (StorageClass.provisioner, CSIDriver
	// name). Default: Env.Name("fake-provisioner") + ".berth.dev".
	Name string
	// TopologyKey is the node label the PV's NodeAffinity requires, with
	// the selected node's value. Default kubernetes.io/hostname.
	TopologyKey string
	// Delay is how long each provisioning "takes".
	Delay time.Duration
}

// FakeProvisioner is a fake dynamic provisioner in the style of upstream's
// volumescheduling tests and of external-provisioner with a node-local CSI
// driver (TopoLVM-like). NOT a real provisioner: nothing is allocated.
//
// It watches the claims of the Env's namespace whose StorageClass names it
// as provisioner and that carry the scheduler's selected-node annotation,
// and creates for each a PV pre-bound to the claim (claimRef with UID), with
// the requested size, access modes and volume mode, a CSI source with its
// name as driver, and NodeAffinity TopologyKey In [<selected node's label>].
// The PV controller then completes the binding. Claims for nodes marked
// with FailOn get a ProvisioningFailed event and lose the selected-node
// annotation instead, so the scheduler tries again (as external-provisioner
// does on final errors). Released PVs it made with reclaim policy Delete
// are deleted.
//
// Run the PersistentVolumeBinder controller alongside it.
type FakeProvisioner struct {
	// Name is the provisioner name to use in StorageClasses.
	Name string

	e       *Env
	opts    FakeProvisionerOptions
	client  kubernetes.Interface
	queue   workqueue.TypedRateLimitingInterface[string]
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	failOn  map[string]bool
	volumes []string

	claimLister corelisters.PersistentVolumeClaimLister
}

// StartFakeProvisioner starts a FakeProvisioner for the Env's namespace; it
// stops when the test ends.
func (e *Env) StartFakeProvisioner(o FakeProvisionerOptions) *FakeProvisioner {
	e.T.Helper()
	if o.Name == "" {
		o.Name = e.Name("fake-provisioner") + ".berth.dev"
	}
	if o.TopologyKey == "" {
		o.TopologyKey = v1.LabelHostname
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &FakeProvisioner{
		Name:   o.Name,
		e:      e,
		opts:   o,
		client: e.CP.NewClient("fake-provisioner"),
		cancel: cancel,
		failOn: map[string]bool{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](50*time.Millisecond, 2*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "fake-provisioner"}),
	}
	e.T.Cleanup(p.stop)

	claims := informers.NewSharedInformerFactoryWithOptions(p.client, 0, informers.WithNamespace(e.Namespace))
	volumes := informers.NewSharedInformerFactory(p.client, 0)
	claimInformer := claims.Core().V1().PersistentVolumeClaims()
	p.claimLister = claimInformer.Lister()
	enqueueClaim := func(obj interface{}) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			p.queue.Add("claim/" + key)
		}
	}
	_, err := claimInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueueClaim,
		UpdateFunc: func(_, obj interface{}) { enqueueClaim(obj) },
	})
	require.NoError(e.T, err)
	_, err = volumes.Core().V1().PersistentVolumes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj interface{}) {
			if pv, ok := obj.(*v1.PersistentVolume); ok && pv.Annotations[AnnProvisionedBy] == p.Name {
				p.queue.Add("volume/" + pv.Name)
			}
		},
	})
	require.NoError(e.T, err)
	claims.Start(ctx.Done())
	volumes.Start(ctx.Done())
	claims.WaitForCacheSync(ctx.Done())
	volumes.WaitForCacheSync(ctx.Done())
	p.wg.Go(func() {
		for p.processNext(ctx) {
		}
	})
	p.wg.Go(func() {
		<-ctx.Done()
		p.queue.ShutDown()
		claims.Shutdown()
		volumes.Shutdown()
	})
	return p
}

// FailOn makes provisioning on these nodes fail (replacing the previous
// set; call with no names to succeed everywhere again).
func (p *FakeProvisioner) FailOn(nodeNames ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failOn = map[string]bool{}
	for _, n := range nodeNames {
		p.failOn[n] = true
	}
}

// Provisioned returns the names of the PVs created so far.
func (p *FakeProvisioner) Provisioned() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.volumes)
}

func (p *FakeProvisioner) stop() {
	p.cancel()
	p.wg.Wait()
}

func (p *FakeProvisioner) processNext(ctx context.Context) bool {
	key, quit := p.queue.Get()
	if quit {
		return false
	}
	defer p.queue.Done(key)
	var err error
	switch {
	case len(key) > 6 && key[:6] == "claim/":
		err = p.syncClaim(ctx, key[6:])
	case len(key) > 7 && key[:7] == "volume/":
		err = p.syncVolume(ctx, key[7:])
	}
	if err != nil && ctx.Err() == nil {
		klog.FromContext(ctx).Info("FakeProvisioner: retrying", "key", key, "err", err)
		p.queue.AddRateLimited(key)
		return true
	}
	p.queue.Forget(key)
	return true
}

func (p *FakeProvisioner) syncClaim(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	claim, err := p.claimLister.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	nodeName := claim.Annotations[AnnSelectedNode]
	if nodeName == "" || claim.Spec.VolumeName != "" || claim.Status.Phase != v1.ClaimPending ||
		claim.DeletionTimestamp != nil || claim.Spec.StorageClassName == nil {
		return nil
	}
	class, err := p.client.StorageV1().StorageClasses().Get(ctx, *claim.Spec.StorageClassName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if class.Provisioner != p.Name {
		return nil
	}
	pvName := "pvc-" + string(claim.UID)
	if _, err := p.client.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{}); err == nil {
		return nil // already provisioned, the PV controller binds it
	}

	p.mu.Lock()
	fail := p.failOn[nodeName]
	p.mu.Unlock()
	if fail {
		return p.reschedule(ctx, claim, nodeName)
	}
	node, err := p.client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	topologyValue := node.Labels[p.opts.TopologyKey]
	if topologyValue == "" {
		return p.reschedule(ctx, claim, nodeName)
	}
	if p.opts.Delay > 0 {
		select {
		case <-time.After(p.opts.Delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	pv := p.makePV(pvName, claim, class, topologyValue)
	if _, err := p.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	p.mu.Lock()
	p.volumes = append(p.volumes, pvName)
	p.mu.Unlock()
	p.event(ctx, claim, v1.EventTypeNormal, "ProvisioningSucceeded", fmt.Sprintf("Successfully provisioned volume %s on node %s", pvName, nodeName))
	return nil
}

func (p *FakeProvisioner) makePV(name string, claim *v1.PersistentVolumeClaim, class *storagev1.StorageClass, topologyValue string) *v1.PersistentVolume {
	reclaim := v1.PersistentVolumeReclaimDelete
	if class.ReclaimPolicy != nil {
		reclaim = *class.ReclaimPolicy
	}
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Labels:      map[string]string{EnvLabel: p.e.ID},
			Annotations: map[string]string{AnnProvisionedBy: p.Name},
		},
		Spec: v1.PersistentVolumeSpec{
			Capacity:                      v1.ResourceList{v1.ResourceStorage: claim.Spec.Resources.Requests[v1.ResourceStorage]},
			AccessModes:                   claim.Spec.AccessModes,
			VolumeMode:                    claim.Spec.VolumeMode,
			StorageClassName:              class.Name,
			PersistentVolumeReclaimPolicy: reclaim,
			MountOptions:                  class.MountOptions,
			ClaimRef: &v1.ObjectReference{
				APIVersion: "v1", Kind: "PersistentVolumeClaim",
				Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID,
			},
			PersistentVolumeSource: v1.PersistentVolumeSource{CSI: &v1.CSIPersistentVolumeSource{
				Driver:       p.Name,
				VolumeHandle: string(uuid.NewUUID()),
			}},
			NodeAffinity: TopologyAffinity(p.opts.TopologyKey, topologyValue),
		},
	}
}

// reschedule gives the claim back to the scheduler.
func (p *FakeProvisioner) reschedule(ctx context.Context, claim *v1.PersistentVolumeClaim, nodeName string) error {
	p.event(ctx, claim, v1.EventTypeWarning, "ProvisioningFailed", fmt.Sprintf("FakeProvisioner: cannot provision on node %s", nodeName))
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:null}}}`, AnnSelectedNode)
	_, err := p.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Patch(ctx, claim.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	return ignoreNotFound(err)
}

func (p *FakeProvisioner) syncVolume(ctx context.Context, name string) error {
	pv, err := p.client.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return ignoreNotFound(err)
	}
	if pv.Status.Phase != v1.VolumeReleased || pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimDelete || pv.DeletionTimestamp != nil {
		return nil
	}
	return ignoreNotFound(p.client.CoreV1().PersistentVolumes().Delete(ctx, name, metav1.DeleteOptions{
		Preconditions: metav1.NewUIDPreconditions(string(pv.UID)),
	}))
}

func (p *FakeProvisioner) event(ctx context.Context, claim *v1.PersistentVolumeClaim, typ, reason, msg string) {
	now := metav1.Now()
	_, err := p.client.CoreV1().Events(claim.Namespace).Create(ctx, &v1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: claim.Name + ".", Namespace: claim.Namespace},
		InvolvedObject: v1.ObjectReference{
			APIVersion: "v1", Kind: "PersistentVolumeClaim",
			Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID, ResourceVersion: claim.ResourceVersion,
		},
		Reason: reason, Message: msg, Type: typ,
		Source:         v1.EventSource{Component: p.Name},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: "berth.dev/fake-provisioner", ReportingInstance: p.Name,
	}, metav1.CreateOptions{})
	if err != nil && ctx.Err() == nil {
		klog.FromContext(ctx).Info("FakeProvisioner: recording event failed", "err", err)
	}
}
