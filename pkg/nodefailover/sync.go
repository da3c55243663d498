package nodefailover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/berth-dev/berth/pkg/nodefailover/policy"
)

// Why the order of a failover is safe
//
// For each affected pod the controller (1) marks the pod Started, (2) for
// each claim bound to a volume pinned to the dead node: retains and
// annotates the PV, then deletes the claim with a UID precondition, (3)
// marks the pod ClaimsDeleted, (4) force-deletes the pod (grace 0) with a
// UID precondition. Deleting the claim before the pod is what avoids
// kubernetes#74374 (a recreated pod binding the old claim):
//
//   - While the old pod exists and is bound to a node, the PVC protection
//     controller keeps the kubernetes.io/pvc-protection finalizer, so the
//     deleted claim stays, Terminating. Nothing can bind it any more: the
//     kubelet refuses to start pods on a claim being deleted and the
//     scheduler rejects them.
//   - When the pod is force-deleted, the StatefulSet controller wants to
//     recreate it, but it creates a pod's claims before the pod and refuses
//     to go on while a claim "is being deleted" (createPersistentVolumeClaims
//     in pkg/controller/statefulset). So no new pod exists that could
//     reference the old claim. PVC protection sees no scheduled pod using
//     the claim and removes the finalizer; the claim is gone.
//   - The StatefulSet controller then creates a fresh claim (new UID, same
//     name) and the pod. Even if it had created the pod first (an older
//     controller, or an operator that creates pods before claims), the pod
//     would be Pending and unscheduled: PVC protection ignores unscheduled
//     pods, so the old claim still goes away, and since Kubernetes 1.27
//     (#113270) the StatefulSet controller recreates missing claims of a
//     Pending pod.
//   - The old PV, Retain, becomes Released and keeps the data; it is pinned
//     to the dead node, so the new claim (WaitForFirstConsumer) binds a
//     volume on a node where the scheduler places the new pod.
//
// The reverse order (pod first) lets the owner recreate the pod at once on
// the still-bound old claim, pinned to the dead node: exactly #74374.
//
// Every delete carries a UID precondition, so a claim or pod recreated
// under the same name is never deleted, however often a sync is retried
// or a restarted controller replays a failover. Every step is recorded in
// the API before the next (pod phase, PV annotations), so a restarted
// controller resumes from the record: claims already deleted are
// Terminating or gone (skipped), the pod still marked is deleted.

// errNodeAlive stops a failover when a fresh read shows the node no longer
// dead; the node is synced again at once and the abort path runs.
var errNodeAlive = errors.New("node is no longer dead")

// errObjectGone: a precondition failed or the object was deleted; the
// object we meant to act on no longer exists.
var errObjectGone = errors.New("object gone or replaced")

type pinnedClaim struct {
	name, pv, class string
}

type candidate struct {
	pod              *v1.Pod
	claims           []pinnedClaim
	inProgress       bool
	owner            owner
	threshold        time.Duration
	allowWithoutPeer bool
}

// syncNode is the whole reconciliation for one node: hand-offs of earlier
// failovers from it, the abort path when it is Ready again, otherwise the
// failover of its pods when it is dead and the gates agree. It returns when
// to look at the node again.
func (c *Controller) syncNode(ctx context.Context, nodeName string) (time.Duration, error) {
	logger := klog.FromContext(ctx)
	node, err := c.readNode(ctx, nodeName)
	if err != nil {
		return 0, err
	}

	handOffsPending, err := c.syncHandOffs(ctx, nodeName)
	if err != nil {
		return 0, err
	}
	var requeue time.Duration
	if handOffsPending {
		requeue = c.cfg.RecheckInterval
	}

	if node != nil && policy.IsNodeReady(node) {
		if c.isDead(nodeName) {
			logger.Info("Node is Ready again")
		}
		c.setDead(nodeName, false)
		c.clearBlocked("node/" + nodeName)
		return requeue, c.abortInFlight(ctx, node)
	}

	now := c.clock.Now()
	cands := c.candidates(ctx, nodeName, node)
	nodeVerdict := policy.IsNodeDead(node, now, c.cfg.NodeDeadThreshold)
	if node == nil && len(cands) == 0 && !handOffsPending {
		c.forgetNode(nodeName)
		return 0, nil
	}
	if node != nil || len(cands) > 0 {
		requeue = minPositive(requeue, c.cfg.RecheckInterval)
	}

	anyDead := nodeVerdict.Dead
	var due []candidate
	for _, cand := range cands {
		v := policy.IsNodeDead(node, now, cand.threshold)
		if v.Dead {
			anyDead = true
			due = append(due, cand)
			continue
		}
		requeue = minPositive(requeue, v.Remaining)
	}
	if anyDead && !c.isDead(nodeName) {
		logger.Info("Node considered dead", "reason", nodeVerdict.Reason, "message", nodeVerdict.Message, "affectedPods", len(cands))
	}
	c.setDead(nodeName, anyDead)
	if len(due) == 0 {
		return requeue, nil
	}

	// Large outage: do nothing at all.
	nodes, err := c.nodeLister.List(labels.Everything())
	if err != nil {
		return 0, err
	}
	total, unready := policy.CountUnready(nodes)
	if d := policy.OutageGate(total, unready, c.cfg.MaxUnreadyFraction); !d.Allowed {
		if c.reportBlocked("node/"+nodeName, d) {
			logger.Info("Failover blocked", "gate", d.Gate, "reason", d.Reason)
			c.eventf([]any{c.nodeEventTarget(nodeName, node)}, v1.EventTypeWarning, policy.ReasonSkipped,
				"Not failing over pods of dead node %s: %s", nodeName, d.Reason)
			for _, cand := range due {
				c.eventf([]any{cand.owner.eventTarget}, v1.EventTypeWarning, policy.ReasonSkipped,
					"Not failing over pod %s from dead node %s: %s", cand.pod.Name, nodeName, d.Reason)
			}
		}
		return minPositive(requeue, c.cfg.RecheckInterval), nil
	}
	c.clearBlocked("node/" + nodeName)

	since := nodeVerdict.NotReadySince
	if since.IsZero() {
		if ts, ok := c.tombstoneOf(nodeName); ok {
			since = ts.notReadySince
		}
	}
	for _, cand := range due {
		err := c.failoverPod(ctx, node, nodeName, cand, since)
		if errors.Is(err, errNodeAlive) {
			logger.Info("Node came back during failover; stopping", "pod", klog.KObj(cand.pod))
			return time.Millisecond, nil
		}
		if err != nil {
			return 0, err
		}
	}
	return requeue, nil
}

// readNode GETs the node from the API server (not the cache); nil if it
// does not exist.
func (c *Controller) readNode(ctx context.Context, name string) (*v1.Node, error) {
	node, err := c.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading node %s: %w", name, err)
	}
	return node, nil
}

// checkStillDead re-reads the node just before a destructive step.
func (c *Controller) checkStillDead(ctx context.Context, nodeName string, threshold time.Duration) error {
	node, err := c.readNode(ctx, nodeName)
	if err != nil {
		return err
	}
	if !policy.IsNodeDead(node, c.clock.Now(), threshold).Dead {
		return errNodeAlive
	}
	return nil
}

// pinnedTo reports whether pv is pinned to the node (node is nil when it
// was deleted). For a deleted node the hostname is the one this process saw
// when it was deleted; if it was deleted before this process saw it, a
// volume counts as pinned to it when it is pinned to this node name, or to
// a host that no existing node has (the pod using it was placed by the
// scheduler where the volume lives). Either way, a volume pinned to a host
// that an existing node carries belongs to that node, never to a deleted one.
func (c *Controller) pinnedTo(pv *v1.PersistentVolume, nodeName string, node *v1.Node) bool {
	if node != nil {
		return policy.VolumePinnedToNode(pv, nodeName, policy.Hostname(node))
	}
	h, n, pinned := policy.PinnedHost(pv)
	if !pinned || (n != "" && n != nodeName) {
		return false
	}
	if h == "" {
		return true // pinned by node name only, to this node
	}
	if live, err := c.nodeIndexer.ByIndex(nodesByHostname, h); err != nil || len(live) > 0 {
		return false
	}
	if ts, ok := c.tombstoneOf(nodeName); ok && ts.hostname != "" {
		return ts.hostname == h
	}
	return true
}

// hostKeys are the index keys of the volumes that may be pinned to the node.
func (c *Controller) hostKeys(nodeName string, node *v1.Node) []string {
	keys := []string{nodeName}
	host := ""
	if node != nil {
		host = policy.Hostname(node)
	} else if ts, ok := c.tombstoneOf(nodeName); ok {
		host = ts.hostname
	}
	if host != "" && host != nodeName {
		keys = append(keys, host)
	}
	return keys
}

// affectedPods returns the pods bound to the node and the stranded ones:
// unscheduled pods whose claims are bound to volumes pinned to the node
// (recreated by their owner after the old pod was deleted, by hand or by
// the pod GC, while the node was dead).
func (c *Controller) affectedPods(nodeName string, node *v1.Node) []*v1.Pod {
	var pods []*v1.Pod
	seen := map[types.UID]bool{}
	if objs, err := c.podIndexer.ByIndex(podsByNode, nodeName); err == nil {
		for _, o := range objs {
			p := o.(*v1.Pod)
			seen[p.UID] = true
			pods = append(pods, p)
		}
	}
	for _, key := range c.hostKeys(nodeName, node) {
		pvs, err := c.pvIndexer.ByIndex(pvsByPinnedHost, key)
		if err != nil {
			continue
		}
		for _, o := range pvs {
			pv := o.(*v1.PersistentVolume)
			if pv.Spec.ClaimRef == nil {
				continue
			}
			users, err := c.podIndexer.ByIndex(podsByClaim, pv.Spec.ClaimRef.Namespace+"/"+pv.Spec.ClaimRef.Name)
			if err != nil {
				continue
			}
			for _, u := range users {
				p := u.(*v1.Pod)
				if p.Spec.NodeName == "" && !seen[p.UID] {
					seen[p.UID] = true
					pods = append(pods, p)
				}
			}
		}
	}
	return pods
}

// candidates lists the affected pods (see affectedPods) that have claims
// bound to volumes pinned to the node and are opted in (or whose failover
// is already in progress), from the informer caches.
func (c *Controller) candidates(ctx context.Context, nodeName string, node *v1.Node) []candidate {
	logger := klog.FromContext(ctx)
	var out []candidate
	for _, pod := range c.affectedPods(nodeName, node) {
		if pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed {
			continue
		}
		inProgress := policy.PodPhaseActive(pod.Annotations[policy.AnnFailoverPhase])
		var claims []pinnedClaim
		for _, name := range podClaimNames(pod) {
			pvc, err := c.pvcLister.PersistentVolumeClaims(pod.Namespace).Get(name)
			if err != nil || pvc.Spec.VolumeName == "" {
				continue
			}
			pv, err := c.pvLister.Get(pvc.Spec.VolumeName)
			if err != nil || !c.pinnedTo(pv, nodeName, node) {
				continue
			}
			claims = append(claims, pinnedClaim{name: name, pv: pv.Name, class: classOf(pvc, pv)})
		}
		if len(claims) == 0 && !inProgress {
			continue
		}
		own := c.resolveOwner(ctx, pod)
		cand := candidate{pod: pod, claims: claims, inProgress: inProgress, owner: own, allowWithoutPeer: len(claims) > 0}
		var notOptedIn []string
		for _, cl := range claims {
			classAnn := c.classAnnotations(cl.class)
			if !policy.OptedIn(classAnn, own.annotations) {
				notOptedIn = append(notOptedIn, cl.name)
				continue
			}
			th, err := policy.Threshold(classAnn, c.cfg.NodeDeadThreshold)
			if err != nil {
				logger.Info("Ignoring an invalid threshold annotation of a StorageClass", "storageClass", cl.class, "err", err)
			}
			cand.threshold = max(cand.threshold, th)
			cand.allowWithoutPeer = cand.allowWithoutPeer && policy.AllowWithoutHealthyPeer(classAnn)
		}
		if cand.threshold == 0 {
			cand.threshold = c.cfg.NodeDeadThreshold
		}
		if len(notOptedIn) > 0 && !inProgress {
			if len(notOptedIn) < len(claims) {
				// Partly opted in: failing over would leave the pod pinned
				// by the other claims. Say so once.
				d := policy.Decision{Gate: "opt-in", Reason: fmt.Sprintf("claims %s are not opted in (%s: %q on their StorageClass or the owner)",
					strings.Join(notOptedIn, ", "), policy.AnnFailover, policy.FailoverEnabled)}
				c.mu.Lock()
				changed := c.lastBlocked[string(pod.UID)] != d.Reason
				c.lastBlocked[string(pod.UID)] = d.Reason
				c.mu.Unlock()
				if changed {
					c.eventf([]any{own.eventTarget, pod}, v1.EventTypeWarning, policy.ReasonSkipped,
						"Not failing over pod %s from node %s: %s", pod.Name, nodeName, d.Reason)
				}
			}
			continue
		}
		out = append(out, cand)
	}
	slices.SortFunc(out, func(a, b candidate) int {
		return strings.Compare(a.pod.Namespace+"/"+a.pod.Name, b.pod.Namespace+"/"+b.pod.Name)
	})
	return out
}

func classOf(pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume) string {
	if pv != nil && pv.Spec.StorageClassName != "" {
		return pv.Spec.StorageClassName
	}
	if pvc != nil && pvc.Spec.StorageClassName != nil {
		return *pvc.Spec.StorageClassName
	}
	return ""
}

func (c *Controller) classAnnotations(class string) map[string]string {
	if class == "" {
		return nil
	}
	sc, err := c.scLister.Get(class)
	if err != nil {
		return nil
	}
	return sc.Annotations
}

// claimOptedIn re-checks one claim's opt-in (its class, or the owner).
func (c *Controller) claimOptedIn(pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume, own owner) bool {
	return policy.OptedIn(c.classAnnotations(classOf(pvc, pv)), own.annotations)
}

// readyPeers counts the owner's other pods that are Ready on Ready nodes.
func (c *Controller) readyPeers(own owner, pod *v1.Pod, deadNode string) int {
	if own.uid == "" {
		return 0
	}
	objs, err := c.podIndexer.ByIndex(podsByController, string(own.uid))
	if err != nil {
		return 0
	}
	n := 0
	for _, o := range objs {
		p := o.(*v1.Pod)
		if p.UID == pod.UID || p.Namespace != pod.Namespace || !policy.IsPodReady(p) ||
			p.Spec.NodeName == "" || p.Spec.NodeName == deadNode || c.isDead(p.Spec.NodeName) {
			continue
		}
		if node, err := c.nodeLister.Get(p.Spec.NodeName); err != nil || !policy.IsNodeReady(node) {
			continue
		}
		n++
	}
	return n
}

// othersInFailover counts the owner's other replicas in failover: recorded
// on PVs (active phases), on pods (active phases), or reserved by this
// process and not yet seen in the caches.
func (c *Controller) othersInFailover(own owner, podKey string) int {
	set := map[string]bool{}
	if objs, err := c.pvIndexer.ByIndex(pvsByOwner, own.key); err == nil {
		for _, o := range objs {
			if ref, err := policy.ParseRef(o.(*v1.PersistentVolume).Annotations[policy.AnnFailoverPod]); err == nil {
				set[ref.Key()] = true
			}
		}
	}
	if own.uid != "" {
		if objs, err := c.podIndexer.ByIndex(podsByController, string(own.uid)); err == nil {
			for _, o := range objs {
				p := o.(*v1.Pod)
				if policy.PodPhaseActive(p.Annotations[policy.AnnFailoverPhase]) {
					set[p.Namespace+"/"+p.Name] = true
				}
			}
		}
	}
	c.mu.Lock()
	for k := range c.reserved[own.key] {
		set[k] = true
	}
	c.mu.Unlock()
	delete(set, podKey)
	return len(set)
}

func (c *Controller) nodeEventTarget(nodeName string, node *v1.Node) any {
	if node != nil {
		return node
	}
	return &v1.ObjectReference{Kind: "Node", APIVersion: "v1", Name: nodeName, UID: types.UID(nodeName)}
}

func (c *Controller) hook(step Step, pod *v1.Pod) error {
	if c.cfg.Hooks == nil || c.cfg.Hooks.AfterStep == nil {
		return nil
	}
	return c.cfg.Hooks.AfterStep(step, pod)
}

// failoverPod runs the gates for one pod of a dead node and, if they agree,
// its failover (see "Why the order of a failover is safe" above).
func (c *Controller) failoverPod(ctx context.Context, node *v1.Node, nodeName string, cand candidate, notReadySince time.Time) error {
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "pod", klog.KObj(cand.pod))
	ctx = klog.NewContext(ctx, logger)
	pods := c.client.CoreV1().Pods(cand.pod.Namespace)

	// Fresh read of the pod: it must still be the same pod on this node.
	pod, err := pods.Get(ctx, cand.pod.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if pod.UID != cand.pod.UID || pod.Spec.NodeName != cand.pod.Spec.NodeName {
		return nil // replaced, or a stranded pod got scheduled meanwhile
	}
	inProgress := policy.PodPhaseActive(pod.Annotations[policy.AnnFailoverPhase])
	own := cand.owner
	podKey := pod.Namespace + "/" + pod.Name
	var nsAnnotations, nodeAnnotations map[string]string
	ns, err := c.client.CoreV1().Namespaces().Get(ctx, pod.Namespace, metav1.GetOptions{})
	switch {
	case err == nil:
		nsAnnotations = ns.Annotations
	case !apierrors.IsNotFound(err):
		return err
	}
	if node != nil {
		nodeAnnotations = node.Annotations
	}

	c.startMu.Lock()
	budget, err := policy.Budget(own.annotations, c.cfg.MaxFailoversPerOwner)
	if err != nil {
		logger.Info("Ignoring an invalid budget annotation of the owner", "owner", own.key, "err", err)
	}
	d := policy.EvaluatePodGates(policy.PodGateInput{
		Paused: []policy.PauseSource{
			{Kind: "Node", Name: nodeName, Annotations: nodeAnnotations},
			{Kind: "Namespace", Name: pod.Namespace, Annotations: nsAnnotations},
			{Kind: own.kind, Name: own.name, Annotations: own.annotations},
		},
		OthersInFailover: c.othersInFailover(own, podKey),
		Budget:           budget,
		ReadyPeers:       c.readyPeers(own, pod, nodeName),
		AllowWithoutPeer: cand.allowWithoutPeer,
		InProgress:       inProgress,
	})
	if !d.Allowed {
		c.startMu.Unlock()
		if c.reportBlocked(string(pod.UID), d) {
			logger.Info("Failover blocked", "gate", d.Gate, "reason", d.Reason)
			c.eventf([]any{own.eventTarget, pod}, v1.EventTypeWarning, policy.ReasonSkipped,
				"Not failing over pod %s from dead node %s: %s", pod.Name, nodeName, d.Reason)
		}
		return nil
	}
	c.clearBlocked(string(pod.UID))
	if c.cfg.DryRun {
		c.startMu.Unlock()
		c.mu.Lock()
		reported := c.dryRunReported[pod.UID]
		c.dryRunReported[pod.UID] = true
		c.mu.Unlock()
		if !reported {
			var plan []string
			for _, cl := range cand.claims {
				plan = append(plan, fmt.Sprintf("retain and annotate PV %s, delete claim %s", cl.pv, cl.name))
			}
			logger.Info("Dry run: would fail over pod", "owner", own.key, "claims", plan)
			countFailover(ResultDryRun)
			c.eventf([]any{own.eventTarget, pod}, v1.EventTypeNormal, policy.ReasonDryRun,
				"Dry run: node %s is dead; would %s, then force-delete pod %s so that %s %s recreates it elsewhere",
				nodeName, strings.Join(plan, "; "), pod.Name, own.kind, own.name)
		}
		return nil
	}
	c.reserve(own.key, podKey, nodeName)
	c.startMu.Unlock()

	startedAt := pod.Annotations[policy.AnnFailedOverAt]
	if !inProgress {
		startedAt = c.clock.Now().UTC().Format(time.RFC3339)
		pod, err = c.patchPod(ctx, pod, map[string]any{
			policy.AnnFailoverPhase:      policy.PodPhaseStarted,
			policy.AnnFailedOverFromNode: nodeName,
			policy.AnnFailedOverAt:       startedAt,
		})
		if errors.Is(err, errObjectGone) {
			c.release(own.key, podKey)
			return nil
		}
		if err != nil {
			return err
		}
		countFailover(ResultStarted)
		var names []string
		for _, cl := range cand.claims {
			names = append(names, cl.name)
		}
		logger.Info("Starting failover", "owner", own.key, "claims", names)
		c.eventf([]any{own.eventTarget, pod}, v1.EventTypeNormal, policy.ReasonStarted,
			"Node %s is dead; failing over pod %s: retaining its local volumes, deleting claims [%s] and the pod so that %s %s recreates them on another node",
			nodeName, pod.Name, strings.Join(names, ", "), own.kind, own.name)
		if err := c.hook(StepPodMarked, pod); err != nil {
			return err
		}
	}
	if startedAt == "" {
		startedAt = c.clock.Now().UTC().Format(time.RFC3339)
	}

	for _, name := range podClaimNames(pod) {
		if err := c.failoverClaim(ctx, pod, name, nodeName, node, own, cand.threshold, startedAt, notReadySince); err != nil {
			return err
		}
	}

	if pod.Annotations[policy.AnnFailoverPhase] != policy.PodPhaseClaimsDeleted {
		pod, err = c.patchPod(ctx, pod, map[string]any{policy.AnnFailoverPhase: policy.PodPhaseClaimsDeleted})
		if errors.Is(err, errObjectGone) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	if err := c.hook(StepClaimsDeleted, pod); err != nil {
		return err
	}

	// Last fresh read of the node before the pod goes.
	if err := c.checkStillDead(ctx, nodeName, cand.threshold); err != nil {
		return err
	}
	preconditions := &metav1.Preconditions{UID: ptr.To(pod.UID)}
	if cand.pod.Spec.NodeName == "" {
		// A stranded pod may have been scheduled since its claims were
		// recreated: delete it only as long as it is unchanged.
		fresh, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if fresh.UID != pod.UID || fresh.Spec.NodeName != "" {
			c.release(own.key, podKey)
			return nil
		}
		preconditions.ResourceVersion = ptr.To(fresh.ResourceVersion)
	}
	err = pods.Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      preconditions,
	})
	switch {
	case err == nil:
		logger.Info("Force-deleted pod", "owner", own.key)
		c.eventf([]any{own.eventTarget}, v1.EventTypeNormal, policy.ReasonStarted,
			"Force-deleted pod %s (uid %s) of dead node %s; waiting for the replacement pod and claims", pod.Name, pod.UID, nodeName)
	case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		// Already deleted, or the name belongs to a new pod: not ours.
	default:
		return fmt.Errorf("deleting pod %s: %w", podKey, err)
	}
	if !c.hasPVRecord(pod) {
		// Nothing to hand off (its claims were already gone): the failover
		// ends here.
		c.release(own.key, podKey)
	}
	return c.hook(StepPodDeleted, pod)
}

// failoverClaim retains and annotates the PV of one claim of the pod, then
// deletes the claim with a UID precondition. Everything is re-read first;
// claims that are already deleted, unbound, not pinned to the node or not
// opted in are left alone.
func (c *Controller) failoverClaim(ctx context.Context, pod *v1.Pod, claimName, nodeName string, node *v1.Node, own owner,
	threshold time.Duration, startedAt string, notReadySince time.Time) error {
	logger := klog.FromContext(ctx)
	claims := c.client.CoreV1().PersistentVolumeClaims(pod.Namespace)
	pvc, err := claims.Get(ctx, claimName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if pvc.DeletionTimestamp != nil || pvc.Spec.VolumeName == "" {
		// Already deleted (never delete twice), or not bound to anything.
		return nil
	}
	pv, err := c.client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != pvc.UID || !c.pinnedTo(pv, nodeName, node) || !c.claimOptedIn(pvc, pv, own) {
		return nil
	}
	if err := c.checkStillDead(ctx, nodeName, threshold); err != nil {
		return err
	}

	claimRef := policy.ClaimRef{Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID}
	podRef := policy.ClaimRef{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}
	at := startedAt
	if pv.Annotations[policy.AnnFailedOverClaim] == claimRef.String() && pv.Annotations[policy.AnnFailedOverAt] != "" {
		at = pv.Annotations[policy.AnnFailedOverAt] // a retry: keep the first record
	}
	annotations := map[string]any{
		policy.AnnFailedOverFromNode:   nodeName,
		policy.AnnFailedOverAt:         at,
		policy.AnnFailedOverClaim:      claimRef.String(),
		policy.AnnFailoverPhase:        policy.PVPhaseInProgress,
		policy.AnnFailoverPod:          podRef.String(),
		policy.AnnFailoverOwner:        own.key,
		policy.AnnFailedOverToClaimUID: nil,
	}
	if !notReadySince.IsZero() {
		annotations[policy.AnnFailoverNodeNotReadySince] = notReadySince.UTC().Format(time.RFC3339Nano)
	}
	patch := map[string]any{
		"metadata": map[string]any{"uid": pv.UID, "annotations": annotations},
		"spec":     map[string]any{"persistentVolumeReclaimPolicy": v1.PersistentVolumeReclaimRetain},
	}
	if err := c.mergePatch(ctx, "persistentvolumes", "", pv.Name, patch); err != nil {
		if errors.Is(err, errObjectGone) {
			return nil
		}
		return err
	}
	if pv.Spec.PersistentVolumeReclaimPolicy != v1.PersistentVolumeReclaimRetain {
		logger.Info("Set the reclaim policy of the volume to Retain", "pv", pv.Name, "was", pv.Spec.PersistentVolumeReclaimPolicy)
	}

	err = claims.Delete(ctx, pvc.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: ptr.To(pvc.UID)}})
	switch {
	case err == nil:
		logger.Info("Deleted claim", "pvc", klog.KObj(pvc), "uid", pvc.UID, "pv", pv.Name)
		c.eventf([]any{pvc}, v1.EventTypeNormal, policy.ReasonStarted,
			"Node %s is dead: PV %s is retained (reclaim policy Retain, annotated %s) and this claim is deleted; %s %s will recreate it empty on another node",
			nodeName, pv.Name, policy.AnnFailedOverClaim, own.kind, own.name)
	case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		// Gone already, or the name belongs to a new claim: never delete it.
		return nil
	default:
		return fmt.Errorf("deleting claim %s: %w", claimRef.Key(), err)
	}
	return c.hook(StepClaimDeleted, pod)
}

// hasPVRecord reports whether some PV (in the cache) records a failover of
// this pod in an active phase.
func (c *Controller) hasPVRecord(pod *v1.Pod) bool {
	ref := policy.ClaimRef{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}.String()
	for _, name := range podClaimNames(pod) {
		objs, err := c.pvIndexer.ByIndex(pvsByClaim, pod.Namespace+"/"+name)
		if err != nil {
			continue
		}
		for _, o := range objs {
			if o.(*v1.PersistentVolume).Annotations[policy.AnnFailoverPod] == ref {
				return true
			}
		}
	}
	return false
}

// patchPod merges annotations into the pod; the pod's UID is part of the
// patch, so a different pod with the same name is never changed.
func (c *Controller) patchPod(ctx context.Context, pod *v1.Pod, annotations map[string]any) (*v1.Pod, error) {
	data, err := json.Marshal(map[string]any{"metadata": map[string]any{"uid": pod.UID, "annotations": annotations}})
	if err != nil {
		return nil, err
	}
	updated, err := c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, data, metav1.PatchOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) || apierrors.IsInvalid(err) {
			return nil, errObjectGone
		}
		return nil, fmt.Errorf("annotating pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return updated, nil
}

// mergePatch applies a JSON merge patch that carries metadata.uid: if the
// object was replaced, the UID does not match and the API server rejects
// the change (the UID is immutable), which we report as errObjectGone.
func (c *Controller) mergePatch(ctx context.Context, resource, namespace, name string, patch map[string]any) error {
	data, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	switch resource {
	case "persistentvolumes":
		_, err = c.client.CoreV1().PersistentVolumes().Patch(ctx, name, types.MergePatchType, data, metav1.PatchOptions{})
	case "persistentvolumeclaims":
		_, err = c.client.CoreV1().PersistentVolumeClaims(namespace).Patch(ctx, name, types.MergePatchType, data, metav1.PatchOptions{})
	default:
		return fmt.Errorf("unexpected resource %s", resource)
	}
	if err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) || apierrors.IsInvalid(err) {
			return errObjectGone
		}
		return fmt.Errorf("patching %s %s: %w", resource, name, err)
	}
	return nil
}

// abortInFlight runs when the node is Ready again: failovers of its pods
// that have not deleted the pod stop, and nothing more is deleted.
func (c *Controller) abortInFlight(ctx context.Context, node *v1.Node) error {
	logger := klog.FromContext(ctx)
	defer c.releaseNode(node.Name)
	for _, pod := range c.affectedPods(node.Name, node) {
		c.mu.Lock()
		delete(c.dryRunReported, pod.UID)
		delete(c.lastBlocked, string(pod.UID))
		c.mu.Unlock()
		if !policy.PodPhaseActive(pod.Annotations[policy.AnnFailoverPhase]) {
			continue
		}
		own := c.resolveOwner(ctx, pod)
		podRef := policy.ClaimRef{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}.String()
		var deleted []string
		pvObjs, err := c.pvIndexer.ByIndex(pvsByFromNode, node.Name)
		if err != nil {
			return err
		}
		for _, po := range pvObjs {
			pv := po.(*v1.PersistentVolume)
			if pv.Annotations[policy.AnnFailoverPod] != podRef || pv.Annotations[policy.AnnFailoverPhase] != policy.PVPhaseInProgress {
				continue
			}
			ref, err := policy.ParseRef(pv.Annotations[policy.AnnFailedOverClaim])
			if err != nil {
				continue
			}
			claim, err := c.client.CoreV1().PersistentVolumeClaims(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			if err == nil && claim.UID == ref.UID && claim.DeletionTimestamp == nil {
				// Not deleted: the failover of this claim never happened.
				err := c.mergePatch(ctx, "persistentvolumes", "", pv.Name, map[string]any{"metadata": map[string]any{
					"uid": pv.UID, "annotations": map[string]any{policy.AnnFailoverPhase: policy.PVPhaseAborted}}})
				if err != nil && !errors.Is(err, errObjectGone) {
					return err
				}
				continue
			}
			deleted = append(deleted, ref.Name)
		}
		if _, err := c.patchPod(ctx, pod, map[string]any{policy.AnnFailoverPhase: policy.PodPhaseAborted}); err != nil && !errors.Is(err, errObjectGone) {
			return err
		}
		c.release(own.key, pod.Namespace+"/"+pod.Name)
		c.enqueueDeadNodes() // the owner's budget is free again
		countFailover(ResultAborted)
		countBlocked(policy.GateNodeAlive)
		if len(deleted) == 0 {
			logger.Info("Node came back; failover aborted before any claim was deleted", "pod", klog.KObj(pod))
			c.eventf([]any{own.eventTarget, pod}, v1.EventTypeNormal, policy.ReasonAborted,
				"Node %s is Ready again: failover of pod %s stopped before any claim was deleted; nothing was changed except the volumes' reclaim policy (Retain)",
				node.Name, pod.Name)
		} else {
			logger.Info("Node came back after claims were deleted; failover stopped, nothing more is deleted", "pod", klog.KObj(pod), "claims", deleted)
			c.eventf([]any{own.eventTarget, pod}, v1.EventTypeWarning, policy.ReasonAborted,
				"Node %s is Ready again: failover of pod %s stopped; claims [%s] were already deleted and stay Terminating while the pod runs. Nothing more is deleted; when the pod goes away they are recreated empty and handed off (old data retained on their PVs)",
				node.Name, pod.Name, strings.Join(deleted, ", "))
		}
	}
	return nil
}

// syncHandOffs moves the failovers recorded on PVs from this node forward:
// it annotates recreated claims (hand-off), and completes the failover
// once the replacement pod runs. It reports whether any is still pending.
func (c *Controller) syncHandOffs(ctx context.Context, nodeName string) (bool, error) {
	objs, err := c.pvIndexer.ByIndex(pvsByFromNode, nodeName)
	if err != nil {
		return false, err
	}
	groups := map[string][]*v1.PersistentVolume{}
	for _, o := range objs {
		pv := o.(*v1.PersistentVolume)
		groups[pv.Annotations[policy.AnnFailoverPod]] = append(groups[pv.Annotations[policy.AnnFailoverPod]], pv)
	}
	pending := false
	for podRefStr, pvs := range groups {
		podRef, err := policy.ParseRef(podRefStr)
		if err != nil {
			klog.FromContext(ctx).Info("Ignoring a PV with a malformed failover record", "pv", pvs[0].Name, "annotation", policy.AnnFailoverPod, "value", podRefStr)
			continue
		}
		allHandedOff := true
		for _, pv := range pvs {
			if pv.Annotations[policy.AnnFailoverPhase] == policy.PVPhaseHandedOff {
				continue
			}
			ok, err := c.handOff(ctx, pv)
			if err != nil {
				return false, err
			}
			allHandedOff = allHandedOff && ok
		}
		if !allHandedOff {
			pending = true
			continue
		}
		// The replacement: a new pod, or the very pod if it was stranded
		// (unscheduled) and got scheduled once its claims were recreated;
		// never the old pod on the dead node.
		repl, err := c.podLister.Pods(podRef.Namespace).Get(podRef.Name)
		if err != nil || (repl.UID == podRef.UID && repl.Spec.NodeName == nodeName) || !policy.IsPodRunning(repl) {
			pending = true
			continue
		}
		if err := c.complete(ctx, podRef, repl, pvs); err != nil {
			return false, err
		}
	}
	return pending, nil
}

// handOff annotates the recreated claim of an old PV (same name, new UID)
// and records the hand-off on the PV. It reports whether the hand-off is
// done.
func (c *Controller) handOff(ctx context.Context, pv *v1.PersistentVolume) (bool, error) {
	logger := klog.FromContext(ctx)
	ref, err := policy.ParseRef(pv.Annotations[policy.AnnFailedOverClaim])
	if err != nil {
		return false, nil
	}
	if cached, err := c.pvcLister.PersistentVolumeClaims(ref.Namespace).Get(ref.Name); err != nil || cached.UID == ref.UID {
		return false, nil // not recreated yet
	}
	claim, err := c.client.CoreV1().PersistentVolumeClaims(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if claim.UID == ref.UID {
		return false, nil
	}
	fresh, err := c.client.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if fresh.Annotations[policy.AnnFailedOverClaim] != ref.String() || !policy.PVPhaseActive(fresh.Annotations[policy.AnnFailoverPhase]) {
		return false, nil // the record changed under us
	}
	at := fresh.Annotations[policy.AnnFailedOverAt]
	node := fresh.Annotations[policy.AnnFailedOverFromNode]
	if claim.Annotations[policy.AnnFailedOverFromPV] != pv.Name || claim.Annotations[policy.AnnFailedOverAt] != at {
		err := c.mergePatch(ctx, "persistentvolumeclaims", claim.Namespace, claim.Name, map[string]any{"metadata": map[string]any{
			"uid": claim.UID,
			"annotations": map[string]any{
				policy.AnnFailedOverFromNode: node,
				policy.AnnFailedOverFromPV:   pv.Name,
				policy.AnnFailedOverAt:       at,
			},
		}})
		if errors.Is(err, errObjectGone) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		logger.Info("Handed off recreated claim", "pvc", klog.KObj(claim), "uid", claim.UID, "oldPV", pv.Name)
		c.eventf([]any{claim}, v1.EventTypeNormal, policy.ReasonHandOff,
			"This claim replaces claim uid %s, deleted because node %s died; its data is retained on PV %s. The new volume is empty: seed it from backup or a peer",
			ref.UID, node, pv.Name)
	}
	err = c.mergePatch(ctx, "persistentvolumes", "", pv.Name, map[string]any{"metadata": map[string]any{
		"uid": pv.UID,
		"annotations": map[string]any{
			policy.AnnFailoverPhase:        policy.PVPhaseHandedOff,
			policy.AnnFailedOverToClaimUID: string(claim.UID),
		},
	}})
	if errors.Is(err, errObjectGone) {
		return false, nil
	}
	return err == nil, err
}

// complete ends a failover whose replacement pod runs: metrics, events,
// and the PVs' phase Completed (which releases the owner's budget).
func (c *Controller) complete(ctx context.Context, podRef policy.ClaimRef, repl *v1.Pod, pvs []*v1.PersistentVolume) error {
	now := c.clock.Now()
	var since time.Time
	var names, claimKeys []string
	ownerKey, node := "", ""
	for _, pv := range pvs {
		if t, err := time.Parse(time.RFC3339Nano, pv.Annotations[policy.AnnFailoverNodeNotReadySince]); err == nil && (since.IsZero() || t.Before(since)) {
			since = t
		}
		names = append(names, pv.Name)
		if ref, err := policy.ParseRef(pv.Annotations[policy.AnnFailedOverClaim]); err == nil {
			claimKeys = append(claimKeys, ref.Name)
		}
		ownerKey, node = pv.Annotations[policy.AnnFailoverOwner], pv.Annotations[policy.AnnFailedOverFromNode]
	}
	for _, pv := range pvs {
		err := c.mergePatch(ctx, "persistentvolumes", "", pv.Name, map[string]any{"metadata": map[string]any{
			"uid": pv.UID, "annotations": map[string]any{policy.AnnFailoverPhase: policy.PVPhaseCompleted}}})
		if err != nil && !errors.Is(err, errObjectGone) {
			return err
		}
	}
	took := "unknown time"
	if !since.IsZero() {
		d := now.Sub(since)
		replacementSeconds.Observe(d.Seconds())
		took = d.Round(time.Millisecond).String()
	}
	countFailover(ResultCompleted)
	c.release(ownerKey, podRef.Key())
	c.enqueueDeadNodes() // the owner's budget is free again
	own := c.resolveOwner(ctx, repl)
	klog.FromContext(ctx).Info("Failover completed", "pod", klog.KObj(repl), "newNode", repl.Spec.NodeName,
		"fromNode", node, "sinceNotReady", took, "oldPVs", names)
	targets := []any{own.eventTarget, repl}
	for _, name := range claimKeys {
		if claim, err := c.pvcLister.PersistentVolumeClaims(podRef.Namespace).Get(name); err == nil {
			targets = append(targets, claim)
		}
	}
	c.eventf(targets, v1.EventTypeNormal, policy.ReasonCompleted,
		"Pod %s runs on node %s after node %s died (%s after it became NotReady); claims [%s] are new and empty, the old data is retained on PVs [%s]",
		repl.Name, repl.Spec.NodeName, node, took, strings.Join(claimKeys, ", "), strings.Join(names, ", "))
	return nil
}

func minPositive(a, b time.Duration) time.Duration {
	switch {
	case a <= 0:
		return b
	case b <= 0:
		return a
	default:
		return min(a, b)
	}
}
