// Package simkubelet is a small in-process stand-in for the kubelets of a set
// of nodes, for integration tests that run a real kube-apiserver but no real
// nodes.
//
// For every node registered with a Kubelet it does what a kubelet does that
// the control plane can observe:
//
//   - renews the node's Lease in kube-node-lease (the heartbeat the node
//     lifecycle controller watches), and keeps the node's Ready condition True
//     with fresh heartbeat times (and puts it back to True after the node
//     lifecycle controller marked it Unknown, once the node is resumed);
//   - moves pods bound to the node to Running with the Ready and
//     ContainersReady conditions True and running container statuses;
//   - finishes the graceful deletion of pods on the node (deletes them with
//     grace period 0, as the kubelet does once the containers have stopped).
//
// Stop(nodeName) makes one node go silent as if its kubelet or network died:
// no lease renewals, no status updates, pods left as they are. The real node
// lifecycle controller then marks the node Unknown and taints it
// node.kubernetes.io/unreachable. Resume(nodeName) brings it back.
//
// Why not kwok: kwok (sigs.k8s.io/kwok) simulates kubelets far more
// completely, but its current releases are built against the k8s.io 0.36
// libraries while this repository pins k8s.io/kubernetes v1.37.2 and the
// 0.37.2 staging modules, so it cannot be imported into this module; it would
// have to be built as a separate binary in its own module (and downloaded
// binaries are not an option here). The integration tests only need
// heartbeats, pod phases and deletion, which this package provides in a few
// hundred lines running in the test process, started and stopped by the tests.
package simkubelet

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// Options tune a Kubelet. Zero values take the defaults.
type Options struct {
	// LeaseRenewInterval is how often each live node's Lease is renewed.
	// Default 1s.
	LeaseRenewInterval time.Duration
	// LeaseDurationSeconds is written into the Lease (the kubelet uses 40).
	// The node lifecycle controller uses its own grace period, not this.
	// Default 40.
	LeaseDurationSeconds int32
	// NodeStatusInterval is how often a live node's Ready condition gets a
	// fresh LastHeartbeatTime. A Ready condition that is not True is fixed at
	// the next lease renewal regardless. Default 5s.
	NodeStatusInterval time.Duration
}

func (o *Options) defaults() {
	if o.LeaseRenewInterval <= 0 {
		o.LeaseRenewInterval = time.Second
	}
	if o.LeaseDurationSeconds <= 0 {
		o.LeaseDurationSeconds = 40
	}
	if o.NodeStatusInterval <= 0 {
		o.NodeStatusInterval = 5 * time.Second
	}
}

// Kubelet simulates the kubelets of the nodes registered with it. Create it
// with New, call Start, Register nodes, and Shutdown at the end.
type Kubelet struct {
	client kubernetes.Interface
	opts   Options

	mu      sync.Mutex
	nodes   map[string]*node
	started bool
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	podLister corelisters.PodLister
	podQueue  workqueue.TypedRateLimitingInterface[string]
	podIndex  cache.Indexer

	ipCounter atomic.Uint32
}

type node struct {
	name string
	// live is false while the node is stopped.
	live atomic.Bool
	// wake triggers an immediate heartbeat.
	wake chan struct{}
	// lastStatus is when the Ready condition was last refreshed.
	lastStatus time.Time
	stop       context.CancelFunc
	done       chan struct{}
}

// New returns a Kubelet that talks to the API server through client.
func New(client kubernetes.Interface, opts Options) *Kubelet {
	opts.defaults()
	return &Kubelet{
		client: client,
		opts:   opts,
		nodes:  map[string]*node{},
	}
}

const nodeNameIndex = "spec.nodeName"

// Start starts the pod handling. It returns once the pod cache has synced.
func (k *Kubelet) Start(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.started {
		return fmt.Errorf("simkubelet: already started")
	}
	k.started = true
	k.ctx, k.cancel = context.WithCancel(ctx)

	factory := informers.NewSharedInformerFactoryWithOptions(k.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermNotEqualSelector("spec.nodeName", "").String()
		}))
	podInformer := factory.Core().V1().Pods()
	if err := podInformer.Informer().AddIndexers(cache.Indexers{nodeNameIndex: func(obj interface{}) ([]string, error) {
		pod, ok := obj.(*v1.Pod)
		if !ok {
			return nil, nil
		}
		return []string{pod.Spec.NodeName}, nil
	}}); err != nil {
		return err
	}
	k.podIndex = podInformer.Informer().GetIndexer()
	k.podLister = podInformer.Lister()
	k.podQueue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](20*time.Millisecond, 2*time.Second),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "simkubelet-pods"})
	enqueue := func(obj interface{}) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			k.podQueue.Add(key)
		}
	}
	if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj interface{}) { enqueue(obj) },
	}); err != nil {
		return err
	}
	factory.Start(k.ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(k.ctx.Done()) {
		if !ok {
			return fmt.Errorf("simkubelet: cache for %v did not sync", typ)
		}
	}
	// Two workers: status updates and deletions are independent per pod.
	for range 2 {
		k.wg.Go(func() {
			for k.processNextPod() {
			}
		})
	}
	k.wg.Go(func() {
		<-k.ctx.Done()
		k.podQueue.ShutDown()
		factory.Shutdown()
	})
	return nil
}

// Shutdown stops all heartbeats and pod handling and waits for the
// goroutines to end. The nodes stay in the API as they are.
func (k *Kubelet) Shutdown() {
	k.mu.Lock()
	if !k.started || k.cancel == nil {
		k.mu.Unlock()
		return
	}
	k.cancel()
	nodes := make([]*node, 0, len(k.nodes))
	for _, n := range k.nodes {
		nodes = append(nodes, n)
	}
	k.mu.Unlock()
	for _, n := range nodes {
		<-n.done
	}
	k.wg.Wait()
}

// Register makes the Kubelet the agent of an existing node: it posts Ready
// status and a Lease right away (returning an error if that fails), then
// keeps heartbeating in the background.
func (k *Kubelet) Register(ctx context.Context, nodeName string) error {
	k.mu.Lock()
	if !k.started {
		k.mu.Unlock()
		return fmt.Errorf("simkubelet: Register before Start")
	}
	if _, ok := k.nodes[nodeName]; ok {
		k.mu.Unlock()
		return fmt.Errorf("simkubelet: node %q already registered", nodeName)
	}
	nctx, stop := context.WithCancel(k.ctx)
	n := &node{name: nodeName, wake: make(chan struct{}, 1), stop: stop, done: make(chan struct{})}
	n.live.Store(true)
	k.nodes[nodeName] = n
	k.mu.Unlock()

	if err := k.heartbeat(ctx, n); err != nil {
		k.mu.Lock()
		delete(k.nodes, nodeName)
		k.mu.Unlock()
		stop()
		close(n.done)
		return fmt.Errorf("simkubelet: registering node %q: %w", nodeName, err)
	}
	go k.heartbeatLoop(nctx, n)
	k.enqueueNodePods(nodeName)
	return nil
}

// Unregister stops simulating nodeName's kubelet for good (the node object
// is left alone). Unknown names are ignored.
func (k *Kubelet) Unregister(nodeName string) {
	k.mu.Lock()
	n, ok := k.nodes[nodeName]
	delete(k.nodes, nodeName)
	k.mu.Unlock()
	if ok {
		n.stop()
		<-n.done
	}
}

// Stop makes nodeName go silent, as if its kubelet crashed or the node lost
// its network: the Lease is no longer renewed, the node status is no longer
// updated and pods on it are left as they are. It panics if nodeName is not
// registered (a test bug).
func (k *Kubelet) Stop(nodeName string) {
	k.mustNode(nodeName).live.Store(false)
}

// Resume undoes Stop: heartbeats resume at once (putting the Ready condition
// back to True) and the pods on the node are synced again.
func (k *Kubelet) Resume(nodeName string) {
	n := k.mustNode(nodeName)
	n.live.Store(true)
	select {
	case n.wake <- struct{}{}:
	default:
	}
	k.enqueueNodePods(nodeName)
}

// IsLive reports whether nodeName is registered and not stopped.
func (k *Kubelet) IsLive(nodeName string) bool {
	k.mu.Lock()
	n, ok := k.nodes[nodeName]
	k.mu.Unlock()
	return ok && n.live.Load()
}

// Nodes returns the names of the registered nodes.
func (k *Kubelet) Nodes() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	names := make([]string, 0, len(k.nodes))
	for name := range k.nodes {
		names = append(names, name)
	}
	return names
}

func (k *Kubelet) mustNode(nodeName string) *node {
	k.mu.Lock()
	defer k.mu.Unlock()
	n, ok := k.nodes[nodeName]
	if !ok {
		panic(fmt.Sprintf("simkubelet: node %q is not registered", nodeName))
	}
	return n
}

func (k *Kubelet) enqueueNodePods(nodeName string) {
	objs, err := k.podIndex.ByIndex(nodeNameIndex, nodeName)
	if err != nil {
		return
	}
	for _, obj := range objs {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			k.podQueue.Add(key)
		}
	}
}

func (k *Kubelet) heartbeatLoop(ctx context.Context, n *node) {
	defer close(n.done)
	ticker := time.NewTicker(k.opts.LeaseRenewInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-n.wake:
		}
		if !n.live.Load() {
			continue
		}
		if err := k.heartbeat(ctx, n); err != nil && ctx.Err() == nil {
			klog.FromContext(ctx).V(2).Info("simkubelet: heartbeat failed", "node", n.name, "err", err)
		}
	}
}

// heartbeat renews the Lease and, when due or when the node is not Ready,
// refreshes the node's conditions.
func (k *Kubelet) heartbeat(ctx context.Context, n *node) error {
	nodeObj, err := k.client.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if err := k.renewLease(ctx, nodeObj); err != nil {
		return err
	}
	if time.Since(n.lastStatus) < k.opts.NodeStatusInterval && isReady(nodeObj) {
		return nil
	}
	if err := k.updateNodeStatus(ctx, n.name); err != nil {
		return err
	}
	n.lastStatus = time.Now()
	return nil
}

func (k *Kubelet) renewLease(ctx context.Context, nodeObj *v1.Node) error {
	leases := k.client.CoordinationV1().Leases(v1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		lease, err := leases.Get(ctx, nodeObj.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{
					Name:      nodeObj.Name,
					Namespace: v1.NamespaceNodeLease,
					// As the kubelet does: the lease goes away with the node.
					OwnerReferences: []metav1.OwnerReference{{
						APIVersion: "v1",
						Kind:       "Node",
						Name:       nodeObj.Name,
						UID:        nodeObj.UID,
					}},
				},
				Spec: coordinationv1.LeaseSpec{
					HolderIdentity:       ptr.To(nodeObj.Name),
					LeaseDurationSeconds: ptr.To(k.opts.LeaseDurationSeconds),
					RenewTime:            &now,
				},
			}, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		lease.Spec.RenewTime = &now
		lease.Spec.HolderIdentity = ptr.To(nodeObj.Name)
		lease.Spec.LeaseDurationSeconds = ptr.To(k.opts.LeaseDurationSeconds)
		_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
		return err
	})
}

func (k *Kubelet) updateNodeStatus(ctx context.Context, nodeName string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		nodeObj, err := k.client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		setCondition(nodeObj, v1.NodeReady, v1.ConditionTrue, "KubeletReady", "kubelet is posting ready status", now)
		setCondition(nodeObj, v1.NodeMemoryPressure, v1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available", now)
		setCondition(nodeObj, v1.NodeDiskPressure, v1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure", now)
		setCondition(nodeObj, v1.NodePIDPressure, v1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available", now)
		if len(nodeObj.Status.Addresses) == 0 {
			nodeObj.Status.Addresses = []v1.NodeAddress{
				{Type: v1.NodeInternalIP, Address: k.nextIP("10.128")},
				{Type: v1.NodeHostName, Address: hostnameOf(nodeObj)},
			}
		}
		if nodeObj.Status.NodeInfo.KubeletVersion == "" {
			nodeObj.Status.NodeInfo.KubeletVersion = "v1.37.2-simkubelet"
			nodeObj.Status.NodeInfo.OperatingSystem = "linux"
			nodeObj.Status.NodeInfo.Architecture = "amd64"
		}
		_, err = k.client.CoreV1().Nodes().UpdateStatus(ctx, nodeObj, metav1.UpdateOptions{})
		return err
	})
}

func (k *Kubelet) processNextPod() bool {
	key, quit := k.podQueue.Get()
	if quit {
		return false
	}
	defer k.podQueue.Done(key)
	if err := k.syncPod(k.ctx, key); err != nil {
		if k.ctx.Err() == nil {
			utilruntime.HandleErrorWithContext(k.ctx, err, "simkubelet: pod sync failed", "pod", key)
			k.podQueue.AddRateLimited(key)
		}
		return true
	}
	k.podQueue.Forget(key)
	return true
}

func (k *Kubelet) syncPod(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := k.podLister.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !k.IsLive(pod.Spec.NodeName) {
		return nil
	}
	pods := k.client.CoreV1().Pods(ns)
	if pod.DeletionTimestamp != nil {
		// Containers "stopped": confirm the deletion like the kubelet does.
		err := pods.Delete(ctx, name, metav1.DeleteOptions{
			GracePeriodSeconds: ptr.To[int64](0),
			Preconditions:      metav1.NewUIDPreconditions(string(pod.UID)),
		})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return err
	}
	if pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed || isRunningAndReady(pod) {
		return nil
	}
	updated := pod.DeepCopy()
	k.markRunning(ctx, updated)
	_, err = pods.UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	// A conflict means a newer version is on its way through the informer,
	// which re-queues the pod.
	if apierrors.IsConflict(err) {
		return nil
	}
	return err
}

func (k *Kubelet) markRunning(ctx context.Context, pod *v1.Pod) {
	now := metav1.Now()
	status := &pod.Status
	status.Phase = v1.PodRunning
	if status.StartTime == nil {
		status.StartTime = &now
	}
	if status.HostIP == "" {
		if nodeObj, err := k.client.CoreV1().Nodes().Get(ctx, pod.Spec.NodeName, metav1.GetOptions{}); err == nil {
			for _, a := range nodeObj.Status.Addresses {
				if a.Type == v1.NodeInternalIP {
					status.HostIP = a.Address
					status.HostIPs = []v1.HostIP{{IP: a.Address}}
				}
			}
		}
	}
	if status.PodIP == "" {
		ip := k.nextIP("10.244")
		status.PodIP = ip
		status.PodIPs = []v1.PodIP{{IP: ip}}
	}
	for _, t := range []v1.PodConditionType{v1.PodReadyToStartContainers, v1.PodInitialized, v1.ContainersReady, v1.PodReady, v1.PodScheduled} {
		setPodCondition(pod, t, now)
	}
	status.ContainerStatuses = containerStatuses(pod.Spec.Containers, status.ContainerStatuses, now)
	status.InitContainerStatuses = nil
}

func containerStatuses(containers []v1.Container, old []v1.ContainerStatus, now metav1.Time) []v1.ContainerStatus {
	started := map[string]metav1.Time{}
	for _, cs := range old {
		if cs.State.Running != nil {
			started[cs.Name] = cs.State.Running.StartedAt
		}
	}
	out := make([]v1.ContainerStatus, 0, len(containers))
	for _, c := range containers {
		at, ok := started[c.Name]
		if !ok {
			at = now
		}
		out = append(out, v1.ContainerStatus{
			Name:        c.Name,
			Image:       c.Image,
			ImageID:     "simkubelet://" + c.Image,
			ContainerID: "simkubelet://" + c.Name,
			Ready:       true,
			Started:     ptr.To(true),
			State:       v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: at}},
		})
	}
	return out
}

func (k *Kubelet) nextIP(prefix string) string {
	n := k.ipCounter.Add(1)
	return fmt.Sprintf("%s.%d.%d", prefix, (n/250)%250, n%250+1)
}

func setCondition(n *v1.Node, t v1.NodeConditionType, s v1.ConditionStatus, reason, msg string, now metav1.Time) {
	for i := range n.Status.Conditions {
		c := &n.Status.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status != s {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.Message, c.LastHeartbeatTime = s, reason, msg, now
		return
	}
	n.Status.Conditions = append(n.Status.Conditions, v1.NodeCondition{
		Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now,
	})
}

func setPodCondition(pod *v1.Pod, t v1.PodConditionType, now metav1.Time) {
	for i := range pod.Status.Conditions {
		c := &pod.Status.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status != v1.ConditionTrue {
			c.Status, c.LastTransitionTime, c.Reason, c.Message = v1.ConditionTrue, now, "", ""
		}
		return
	}
	pod.Status.Conditions = append(pod.Status.Conditions, v1.PodCondition{Type: t, Status: v1.ConditionTrue, LastTransitionTime: now})
}

func isReady(n *v1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

func isRunningAndReady(pod *v1.Pod) bool {
	if pod.Status.Phase != v1.PodRunning {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == v1.PodReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

func hostnameOf(n *v1.Node) string {
	if h := n.Labels[v1.LabelHostname]; h != "" {
		return h
	}
	return n.Name
}

// WaitForLease blocks until nodeName's Lease exists, for callers that need
// the node lifecycle controller to see a heartbeat before going on.
func (k *Kubelet) WaitForLease(ctx context.Context, nodeName string, timeout time.Duration) error {
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		_, err := k.client.CoordinationV1().Leases(v1.NamespaceNodeLease).Get(ctx, nodeName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
}
