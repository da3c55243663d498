package perf

import (
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// recorder timestamps, from informer events, when each pod is bound to a
// node and each claim becomes Bound, and signals when every pod is done
// (bound, with all its claims Bound). Nothing is polled: the times are
// those at which the watch delivered the change to this process.
type recorder struct {
	plan *plan

	mu          sync.Mutex
	created     map[string]time.Time // pod → just before its Create call
	podBound    map[string]time.Time // pod → first seen with spec.nodeName
	podNode     map[string]string
	claimBound  map[string]time.Time // claim → first seen phase Bound
	claimVolume map[string]string
	// claimRefSet: claim → first seen as a PV's claimRef (the scheduler's
	// PreBind write), not counting PVs pre-bound before the pods existed.
	claimRefSet map[string]time.Time
	completed   map[string]time.Time // pod → max(podBound, its claims' Bound)
	claimOwner  map[string]string    // claim → pod
	podClaims   map[string][]string

	allPodsDone   chan struct{}
	allClaimsDone chan struct{}
	sentinelBound chan struct{}

	factory   informers.SharedInformerFactory
	pvFactory informers.SharedInformerFactory
	stop      chan struct{}
}

func newRecorder(client kubernetes.Interface, namespace string, p *plan) (*recorder, error) {
	r := &recorder{
		plan:          p,
		created:       map[string]time.Time{},
		podBound:      map[string]time.Time{},
		podNode:       map[string]string{},
		claimBound:    map[string]time.Time{},
		claimVolume:   map[string]string{},
		claimRefSet:   map[string]time.Time{},
		completed:     map[string]time.Time{},
		claimOwner:    map[string]string{},
		podClaims:     map[string][]string{},
		allPodsDone:   make(chan struct{}),
		allClaimsDone: make(chan struct{}),
		sentinelBound: make(chan struct{}),
		stop:          make(chan struct{}),
	}
	for _, c := range p.claims {
		r.claimOwner[c.name] = p.pods[c.pod].name
	}
	for _, pod := range p.pods {
		r.podClaims[pod.name] = pod.claims
	}
	r.factory = informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace))
	pods := r.factory.Core().V1().Pods().Informer()
	if _, err := pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { r.onPod(obj) },
		UpdateFunc: func(_, obj any) { r.onPod(obj) },
	}); err != nil {
		return nil, err
	}
	claims := r.factory.Core().V1().PersistentVolumeClaims().Informer()
	if _, err := claims.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { r.onClaim(obj) },
		UpdateFunc: func(_, obj any) { r.onClaim(obj) },
	}); err != nil {
		return nil, err
	}
	r.pvFactory = informers.NewSharedInformerFactory(client, 0)
	pvs := r.pvFactory.Core().V1().PersistentVolumes().Informer()
	if _, err := pvs.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(oldObj, obj any) { r.onPV(oldObj, obj) },
	}); err != nil {
		return nil, err
	}
	r.pvFactory.Start(r.stop)
	r.factory.Start(r.stop)
	r.pvFactory.WaitForCacheSync(r.stop)
	r.factory.WaitForCacheSync(r.stop)
	return r, nil
}

func (r *recorder) shutdown() {
	close(r.stop)
	r.factory.Shutdown()
	r.pvFactory.Shutdown()
}

// onPV records when a PV's claimRef first names one of our claims in an
// update (the scheduler's PreBind write in the berth and in-tree runs).
func (r *recorder) onPV(oldObj, obj any) {
	pv, ok := obj.(*v1.PersistentVolume)
	if !ok || pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.Namespace != namespace {
		return
	}
	if old, ok := oldObj.(*v1.PersistentVolume); ok && old.Spec.ClaimRef != nil && old.Spec.ClaimRef.Name == pv.Spec.ClaimRef.Name {
		return
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ours := r.claimOwner[pv.Spec.ClaimRef.Name]; !ours {
		return
	}
	if _, seen := r.claimRefSet[pv.Spec.ClaimRef.Name]; !seen {
		r.claimRefSet[pv.Spec.ClaimRef.Name] = now
	}
}

// markCreated records that pod is about to be created.
func (r *recorder) markCreated(pod string, t time.Time) {
	r.mu.Lock()
	r.created[pod] = t
	r.mu.Unlock()
}

func (r *recorder) onPod(obj any) {
	pod, ok := obj.(*v1.Pod)
	if !ok || pod.Spec.NodeName == "" {
		return
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, seen := r.podBound[pod.Name]; seen {
		return
	}
	r.podBound[pod.Name] = now
	r.podNode[pod.Name] = pod.Spec.NodeName
	r.checkPod(pod.Name, now)
}

func (r *recorder) onClaim(obj any) {
	pvc, ok := obj.(*v1.PersistentVolumeClaim)
	if !ok || pvc.Status.Phase != v1.ClaimBound {
		return
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, seen := r.claimBound[pvc.Name]; seen {
		return
	}
	if pvc.Name == sentinelName {
		close(r.sentinelBound)
		return
	}
	if _, ours := r.claimOwner[pvc.Name]; !ours {
		return
	}
	r.claimBound[pvc.Name] = now
	r.claimVolume[pvc.Name] = pvc.Spec.VolumeName
	if len(r.claimBound) == len(r.plan.claims) {
		close(r.allClaimsDone)
	}
	if pod, ok := r.claimOwner[pvc.Name]; ok {
		r.checkPod(pod, now)
	}
}

// checkPod marks pod completed at now if it is bound and all its claims
// are Bound. Called with mu held.
func (r *recorder) checkPod(pod string, now time.Time) {
	if _, done := r.completed[pod]; done {
		return
	}
	if _, bound := r.podBound[pod]; !bound {
		return
	}
	for _, c := range r.podClaims[pod] {
		if _, ok := r.claimBound[c]; !ok {
			return
		}
	}
	r.completed[pod] = now
	if len(r.completed) == len(r.plan.pods) {
		close(r.allPodsDone)
	}
}

// snapshot is a consistent copy of what the recorder saw.
type snapshot struct {
	created     map[string]time.Time
	podBound    map[string]time.Time
	podNode     map[string]string
	claimBound  map[string]time.Time
	claimVolume map[string]string
	claimRefSet map[string]time.Time
	completed   map[string]time.Time
}

func (r *recorder) snapshot() snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return snapshot{
		created:     cloneMap(r.created),
		podBound:    cloneMap(r.podBound),
		podNode:     cloneMap(r.podNode),
		claimBound:  cloneMap(r.claimBound),
		claimVolume: cloneMap(r.claimVolume),
		claimRefSet: cloneMap(r.claimRefSet),
		completed:   cloneMap(r.completed),
	}
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
