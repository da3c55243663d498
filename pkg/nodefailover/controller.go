// Package nodefailover is the node failover controller: it decides, safely,
// that a node is gone, deletes the claims that pin pods to it by local
// PersistentVolumes so that their owners recreate pod and claim elsewhere,
// and hands the new, empty volume over to the database operator.
//
// The decisions are pure functions in the policy sub-package; this package
// is the plumbing: informers, a work queue keyed by node name, fresh reads
// before every action, API writes, events and metrics.
//
// The progress of every failover is kept in the API (annotations on the pod
// and on the old PV, see policy), never only in memory, so a controller
// restarted at any point finishes a failover exactly once.
package nodefailover

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/berth-dev/berth/pkg/nodefailover/policy"
)

// ComponentName is the event source and the default Lease name.
const ComponentName = "berth-nodefailover"

// Indexes on the informers.
const (
	podsByNode       = "berth.dev/by-node"        // pod.spec.nodeName
	podsByController = "berth.dev/by-controller"  // UID of the controller owner
	podsByClaim      = "berth.dev/by-claim"       // "<ns>/<claim>" of each PVC volume
	pvsByFromNode    = "berth.dev/by-from-node"   // AnnFailedOverFromNode, active phases only
	pvsByClaim       = "berth.dev/by-claim"       // "<ns>/<name>" of AnnFailedOverClaim, active phases only
	pvsByOwner       = "berth.dev/by-owner"       // AnnFailoverOwner, active phases only
	pvsByPinnedHost  = "berth.dev/by-pinned-host" // the host (and node name) a PV is pinned to
	nodesByHostname  = "berth.dev/by-hostname"    // kubernetes.io/hostname label
)

// Controller is the node failover controller. Create it with New, start
// the informer factory, then Run it.
type Controller struct {
	cfg      Config
	client   kubernetes.Interface
	metadata metadata.Interface
	mapper   meta.RESTMapper
	clock    clock.Clock

	nodeLister  corelisters.NodeLister
	podLister   corelisters.PodLister
	pvcLister   corelisters.PersistentVolumeClaimLister
	pvLister    corelisters.PersistentVolumeLister
	scLister    storagelisters.StorageClassLister
	stsLister   appslisters.StatefulSetLister
	nodeIndexer cache.Indexer
	podIndexer  cache.Indexer
	pvIndexer   cache.Indexer
	synced      []cache.InformerSynced

	queue       workqueue.TypedRateLimitingInterface[string]
	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder

	mu sync.Mutex
	// startMu serialises "evaluate the gates, then reserve" across
	// workers so that two dead nodes cannot both spend one owner's budget.
	startMu sync.Mutex
	// reserved: owner key → pod key → node, for failovers started by this
	// process whose API record the informers may not have seen yet.
	reserved map[string]map[string]string
	// dead: nodes currently considered dead (the gauge).
	dead map[string]bool
	// tombstones: the last state of deleted nodes (hostname, NotReady since).
	tombstones map[string]tombstone
	// lastBlocked: pod UID or "node/<name>" → last gate reason reported, so
	// events and the blocked counter fire on changes, not on every recheck.
	lastBlocked map[string]string
	// dryRunReported: pods already reported in dry-run mode.
	dryRunReported map[types.UID]bool
}

type tombstone struct {
	hostname      string
	notReadySince time.Time
	deletedAt     time.Time
}

// tombstoneTTL is how long the last state of a deleted node is kept (its
// hostname names the node of pods stranded on its volumes later on).
const tombstoneTTL = 24 * time.Hour

// Option customises New.
type Option func(*Controller)

// WithClock sets the clock (tests).
func WithClock(c clock.Clock) Option { return func(ctrl *Controller) { ctrl.clock = c } }

// WithRecorder replaces the event recorder (tests); Run then does not
// start an event broadcaster.
func WithRecorder(r record.EventRecorder) Option {
	return func(ctrl *Controller) { ctrl.recorder = r }
}

// New creates the controller on the factory's informers (nodes, pods,
// claims, volumes, StorageClasses, StatefulSets) and adds its indexes and
// event handlers; start the factory after New. metadataClient and mapper
// read the annotations of owners other than StatefulSets (operators' custom
// resources); without them such owners count as unannotated.
func New(client kubernetes.Interface, metadataClient metadata.Interface, mapper meta.RESTMapper,
	factory informers.SharedInformerFactory, cfg Config, opts ...Option) (*Controller, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	RegisterMetrics()
	c := &Controller{
		cfg:            cfg,
		client:         client,
		metadata:       metadataClient,
		mapper:         mapper,
		clock:          clock.RealClock{},
		reserved:       map[string]map[string]string{},
		dead:           map[string]bool{},
		tombstones:     map[string]tombstone{},
		lastBlocked:    map[string]string{},
		dryRunReported: map[types.UID]bool{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: ComponentName}),
	}
	for _, o := range opts {
		o(c)
	}

	nodes := factory.Core().V1().Nodes()
	pods := factory.Core().V1().Pods()
	pvcs := factory.Core().V1().PersistentVolumeClaims()
	pvs := factory.Core().V1().PersistentVolumes()
	classes := factory.Storage().V1().StorageClasses()
	sets := factory.Apps().V1().StatefulSets()

	if err := nodes.Informer().AddIndexers(cache.Indexers{nodesByHostname: indexNodeByHostname}); err != nil {
		return nil, err
	}
	if err := pods.Informer().AddIndexers(cache.Indexers{
		podsByNode: indexPodByNode, podsByController: indexPodByController, podsByClaim: indexPodByClaim,
	}); err != nil {
		return nil, err
	}
	if err := pvs.Informer().AddIndexers(cache.Indexers{
		pvsByFromNode: indexPVByFromNode, pvsByClaim: indexPVByClaim, pvsByOwner: indexPVByOwner,
		pvsByPinnedHost: indexPVByPinnedHost,
	}); err != nil {
		return nil, err
	}

	c.nodeLister, c.nodeIndexer = nodes.Lister(), nodes.Informer().GetIndexer()
	c.podLister, c.podIndexer = pods.Lister(), pods.Informer().GetIndexer()
	c.pvcLister = pvcs.Lister()
	c.pvLister, c.pvIndexer = pvs.Lister(), pvs.Informer().GetIndexer()
	c.scLister = classes.Lister()
	c.stsLister = sets.Lister()

	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{nodes.Informer(), cache.ResourceEventHandlerFuncs{AddFunc: c.onNodeAdd, UpdateFunc: c.onNodeUpdate, DeleteFunc: c.onNodeDelete}},
		{pods.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.onPod(obj) },
			UpdateFunc: func(_, obj any) { c.onPod(obj) },
			DeleteFunc: func(obj any) {
				if pod, ok := obj.(*v1.Pod); ok {
					c.forgetPod(pod.UID)
				}
				c.onPod(obj)
			},
		}},
		{pvcs.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.onClaim(obj) },
			UpdateFunc: func(_, obj any) { c.onClaim(obj) },
			DeleteFunc: func(obj any) { c.onClaim(obj) },
		}},
		{pvs.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.onVolume(obj) },
			UpdateFunc: func(_, obj any) { c.onVolume(obj) },
		}},
	}
	// Run waits for the handlers to have seen the initial lists too, so
	// that every node with work is queued before the workers start.
	c.synced = []cache.InformerSynced{classes.Informer().HasSynced, sets.Informer().HasSynced}
	for _, h := range handlers {
		reg, err := h.inf.AddEventHandler(h.h)
		if err != nil {
			return nil, err
		}
		c.synced = append(c.synced, reg.HasSynced)
	}
	return c, nil
}

// HasSynced reports whether the informer caches (and the event handlers'
// initial lists) are synced.
func (c *Controller) HasSynced() bool {
	for _, synced := range c.synced {
		if !synced() {
			return false
		}
	}
	return true
}

// Run waits for the caches, then syncs nodes until ctx is cancelled, and
// returns once the workers have stopped.
func (c *Controller) Run(ctx context.Context) {
	defer utilruntime.HandleCrashWithContext(ctx)
	logger := klog.FromContext(ctx)
	if c.recorder == nil {
		c.broadcaster = record.NewBroadcaster(record.WithContext(ctx))
		c.broadcaster.StartStructuredLogging(3)
		c.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
		c.recorder = c.broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: ComponentName})
		defer c.broadcaster.Shutdown()
	}
	defer c.queue.ShutDown()

	logger.Info("Starting node failover controller", "threshold", c.cfg.NodeDeadThreshold,
		"maxUnreadyFraction", c.cfg.MaxUnreadyFraction, "maxFailoversPerOwner", c.cfg.MaxFailoversPerOwner, "dryRun", c.cfg.DryRun)
	if !cache.WaitForNamedCacheSync(ComponentName, ctx.Done(), c.synced...) {
		return
	}
	c.sweep()
	var wg sync.WaitGroup
	for range c.cfg.Workers {
		wg.Go(func() { wait.UntilWithContext(ctx, c.worker, time.Second) })
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	logger.Info("Stopped node failover controller")
}

// sweep queues the nodes of stranded pods once every cache is synced: the
// pod handler may have seen a pod before the claim and volume caches were
// filled.
func (c *Controller) sweep() {
	pods, err := c.podLister.List(labels.Everything())
	if err != nil {
		return
	}
	for _, pod := range pods {
		if pod.Spec.NodeName == "" && pod.DeletionTimestamp == nil {
			c.enqueueStranded(pod)
		}
	}
}

func (c *Controller) worker(ctx context.Context) {
	for c.processNext(ctx) {
	}
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	after, err := c.syncNode(klog.NewContext(ctx, klog.LoggerWithValues(klog.FromContext(ctx), "node", key)), key)
	if err != nil {
		if ctx.Err() == nil {
			utilruntime.HandleErrorWithContext(ctx, err, "Syncing node failed, will retry", "node", key)
		}
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	if after > 0 {
		c.queue.AddAfter(key, after)
	}
	return true
}

// --- informer event handlers: all they do is enqueue node names ---

func (c *Controller) onNodeAdd(obj any) {
	node, ok := obj.(*v1.Node)
	if !ok {
		return
	}
	if !policy.IsNodeReady(node) || c.isDead(node.Name) {
		c.queue.Add(node.Name)
	}
}

func (c *Controller) onNodeUpdate(oldObj, newObj any) {
	oldNode, ok1 := oldObj.(*v1.Node)
	node, ok2 := newObj.(*v1.Node)
	if !ok1 || !ok2 {
		return
	}
	// Ready nodes that stay Ready are not interesting (status updates
	// arrive often); everything else is.
	if policy.IsNodeReady(oldNode) && policy.IsNodeReady(node) && !c.isDead(node.Name) {
		return
	}
	c.queue.Add(node.Name)
}

func (c *Controller) onNodeDelete(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	node, ok := obj.(*v1.Node)
	if !ok {
		return
	}
	now := c.clock.Now()
	ts := tombstone{hostname: policy.Hostname(node), notReadySince: now, deletedAt: now}
	if !policy.IsNodeReady(node) {
		if rc := policy.ReadyCondition(node); rc != nil && !rc.LastTransitionTime.IsZero() {
			ts.notReadySince = rc.LastTransitionTime.Time
		}
	}
	c.mu.Lock()
	for name, old := range c.tombstones {
		if now.Sub(old.deletedAt) > tombstoneTTL {
			delete(c.tombstones, name)
		}
	}
	c.tombstones[node.Name] = ts
	c.mu.Unlock()
	c.queue.Add(node.Name)
}

func (c *Controller) onPod(obj any) {
	deleted := false
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj, deleted = t.Obj, true
	}
	pod, ok := obj.(*v1.Pod)
	if !ok {
		return
	}
	if deleted {
		c.forgetPod(pod.UID)
	}
	if pod.Spec.NodeName != "" {
		if node, err := c.nodeLister.Get(pod.Spec.NodeName); err != nil || !policy.IsNodeReady(node) {
			c.queue.Add(pod.Spec.NodeName)
		}
	} else if pod.DeletionTimestamp == nil {
		c.enqueueStranded(pod)
	}
	// A replacement pod changing state may complete a hand-off.
	for _, claim := range podClaimNames(pod) {
		c.enqueueFailoversOfClaim(pod.Namespace + "/" + claim)
	}
}

// enqueueStranded handles an unscheduled pod: if a claim of it is bound to
// a volume pinned to a host whose node is not Ready or gone, the pod is
// stranded (it was recreated, or deleted by hand or by the pod GC, after
// its node died, and now waits for a node that will not come back), and
// the node is queued.
func (c *Controller) enqueueStranded(pod *v1.Pod) {
	for _, claim := range podClaimNames(pod) {
		pvc, err := c.pvcLister.PersistentVolumeClaims(pod.Namespace).Get(claim)
		if err != nil || pvc.Spec.VolumeName == "" {
			continue
		}
		pv, err := c.pvLister.Get(pvc.Spec.VolumeName)
		if err != nil {
			continue
		}
		host, name, pinned := policy.PinnedHost(pv)
		if !pinned {
			continue
		}
		if name != "" {
			if node, err := c.nodeLister.Get(name); err != nil || !policy.IsNodeReady(node) {
				c.queue.Add(name)
			}
			continue
		}
		nodes, err := c.nodeIndexer.ByIndex(nodesByHostname, host)
		if err != nil {
			continue
		}
		for _, o := range nodes {
			if node := o.(*v1.Node); !policy.IsNodeReady(node) {
				c.queue.Add(node.Name)
			}
		}
		if len(nodes) == 0 {
			c.queue.Add(c.deletedNodeOfHost(host))
		}
	}
}

// deletedNodeOfHost names the deleted node that had this hostname, if this
// process saw it go, or else the hostname itself (the kubelet's default
// node name).
func (c *Controller) deletedNodeOfHost(host string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, ts := range c.tombstones {
		if ts.hostname == host {
			return name
		}
	}
	return host
}

func (c *Controller) onClaim(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pvc, ok := obj.(*v1.PersistentVolumeClaim)
	if !ok {
		return
	}
	c.enqueueFailoversOfClaim(pvc.Namespace + "/" + pvc.Name)
}

func (c *Controller) onVolume(obj any) {
	pv, ok := obj.(*v1.PersistentVolume)
	if !ok {
		return
	}
	if policy.PVPhaseActive(pv.Annotations[policy.AnnFailoverPhase]) {
		if node := pv.Annotations[policy.AnnFailedOverFromNode]; node != "" {
			c.queue.Add(node)
		}
	}
}

func (c *Controller) enqueueFailoversOfClaim(claimKey string) {
	objs, err := c.pvIndexer.ByIndex(pvsByClaim, claimKey)
	if err != nil {
		return
	}
	for _, o := range objs {
		if node := o.(*v1.PersistentVolume).Annotations[policy.AnnFailedOverFromNode]; node != "" {
			c.queue.Add(node)
		}
	}
}

// --- indexes ---

func indexNodeByHostname(obj any) ([]string, error) {
	node, ok := obj.(*v1.Node)
	if !ok {
		return nil, nil
	}
	return []string{policy.Hostname(node)}, nil
}

func indexPodByNode(obj any) ([]string, error) {
	pod, ok := obj.(*v1.Pod)
	if !ok || pod.Spec.NodeName == "" {
		return nil, nil
	}
	return []string{pod.Spec.NodeName}, nil
}

func indexPodByController(obj any) ([]string, error) {
	pod, ok := obj.(*v1.Pod)
	if !ok {
		return nil, nil
	}
	if ref := metav1.GetControllerOf(pod); ref != nil {
		return []string{string(ref.UID)}, nil
	}
	return nil, nil
}

func indexPodByClaim(obj any) ([]string, error) {
	pod, ok := obj.(*v1.Pod)
	if !ok {
		return nil, nil
	}
	var keys []string
	for _, claim := range podClaimNames(pod) {
		keys = append(keys, pod.Namespace+"/"+claim)
	}
	return keys, nil
}

func activePV(obj any) (*v1.PersistentVolume, bool) {
	pv, ok := obj.(*v1.PersistentVolume)
	if !ok || !policy.PVPhaseActive(pv.Annotations[policy.AnnFailoverPhase]) {
		return nil, false
	}
	return pv, true
}

func indexPVByFromNode(obj any) ([]string, error) {
	pv, ok := activePV(obj)
	if !ok || pv.Annotations[policy.AnnFailedOverFromNode] == "" {
		return nil, nil
	}
	return []string{pv.Annotations[policy.AnnFailedOverFromNode]}, nil
}

func indexPVByClaim(obj any) ([]string, error) {
	pv, ok := activePV(obj)
	if !ok {
		return nil, nil
	}
	ref, err := policy.ParseRef(pv.Annotations[policy.AnnFailedOverClaim])
	if err != nil {
		return nil, nil
	}
	return []string{ref.Key()}, nil
}

func indexPVByPinnedHost(obj any) ([]string, error) {
	pv, ok := obj.(*v1.PersistentVolume)
	if !ok {
		return nil, nil
	}
	host, name, pinned := policy.PinnedHost(pv)
	if !pinned {
		return nil, nil
	}
	var keys []string
	if host != "" {
		keys = append(keys, host)
	}
	if name != "" && name != host {
		keys = append(keys, name)
	}
	return keys, nil
}

func indexPVByOwner(obj any) ([]string, error) {
	pv, ok := activePV(obj)
	if !ok || pv.Annotations[policy.AnnFailoverOwner] == "" {
		return nil, nil
	}
	return []string{pv.Annotations[policy.AnnFailoverOwner]}, nil
}

// podClaimNames lists the PersistentVolumeClaim volumes of a pod (generic
// ephemeral volumes belong to the pod and go with it).
func podClaimNames(pod *v1.Pod) []string {
	var names []string
	for _, vol := range pod.Spec.Volumes {
		if vol.PersistentVolumeClaim != nil {
			names = append(names, vol.PersistentVolumeClaim.ClaimName)
		}
	}
	return names
}

// --- in-memory bookkeeping ---

func (c *Controller) isDead(node string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead[node]
}

// enqueueDeadNodes looks at every dead node again (after a failover ends,
// a blocked one may go ahead).
func (c *Controller) enqueueDeadNodes() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for node := range c.dead {
		c.queue.Add(node)
	}
}

func (c *Controller) setDead(node string, dead bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if dead {
		c.dead[node] = true
	} else {
		delete(c.dead, node)
	}
	nodesConsideredDead.Set(float64(len(c.dead)))
}

func (c *Controller) reserve(owner, podKey, node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reserved[owner] == nil {
		c.reserved[owner] = map[string]string{}
	}
	c.reserved[owner][podKey] = node
}

func (c *Controller) release(owner, podKey string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.reserved[owner], podKey)
	if len(c.reserved[owner]) == 0 {
		delete(c.reserved, owner)
	}
}

// releaseNode drops the reservations made for pods of node.
func (c *Controller) releaseNode(node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for owner, pods := range c.reserved {
		for pod, n := range pods {
			if n == node {
				delete(pods, pod)
			}
		}
		if len(pods) == 0 {
			delete(c.reserved, owner)
		}
	}
}

// reportBlocked emits an event and counts the gate when the block reason
// for key changes; it returns whether it reported.
func (c *Controller) reportBlocked(key string, d policy.Decision) bool {
	c.mu.Lock()
	changed := c.lastBlocked[key] != d.Reason
	c.lastBlocked[key] = d.Reason
	c.mu.Unlock()
	if changed {
		countBlocked(d.Gate)
	}
	return changed
}

func (c *Controller) clearBlocked(key string) {
	c.mu.Lock()
	delete(c.lastBlocked, key)
	c.mu.Unlock()
}

func (c *Controller) tombstoneOf(node string) (tombstone, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts, ok := c.tombstones[node]
	return ts, ok
}

// forgetPod drops what is remembered about a deleted pod.
func (c *Controller) forgetPod(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.lastBlocked, string(uid))
	delete(c.dryRunReported, uid)
}

// forgetNode drops a deleted node that has no work left (its tombstone is
// kept, see tombstoneTTL).
func (c *Controller) forgetNode(node string) {
	c.mu.Lock()
	delete(c.lastBlocked, "node/"+node)
	c.mu.Unlock()
	c.setDead(node, false)
}

// eventf records an event on each object (nil objects are skipped).
func (c *Controller) eventf(objs []any, eventType, reason, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	for _, o := range objs {
		switch obj := o.(type) {
		case nil:
		case *v1.Pod:
			if obj != nil {
				c.recorder.Event(obj, eventType, reason, msg)
			}
		case *v1.PersistentVolumeClaim:
			if obj != nil {
				c.recorder.Event(obj, eventType, reason, msg)
			}
		case *v1.PersistentVolume:
			if obj != nil {
				c.recorder.Event(obj, eventType, reason, msg)
			}
		case *v1.Node:
			if obj != nil {
				c.recorder.Event(obj, eventType, reason, msg)
			}
		case *v1.ObjectReference:
			if obj != nil {
				c.recorder.Event(obj, eventType, reason, msg)
			}
		case *appsv1.StatefulSet:
			if obj != nil {
				c.recorder.Event(obj, eventType, reason, msg)
			}
		}
	}
}
