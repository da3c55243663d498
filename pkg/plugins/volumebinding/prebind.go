package volumebinding

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/component-helpers/storage/volume"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
)

var versioner = storage.APIObjectVersioner{}

// PreBindPreFlight tells the framework whether PreBind has work for the pod.
func (pl *LocalVolumeBinding) PreBindPreFlight(ctx context.Context, cs fwk.CycleState, pod *v1.Pod, nodeName string) (*fwk.PreBindPreFlightResult, *fwk.Status) {
	result := &fwk.PreBindPreFlightResult{AllowParallel: true}
	s, err := readState(cs)
	if err != nil {
		return result, fwk.AsStatus(err)
	}
	if s.reserved.empty() {
		return result, fwk.NewStatus(fwk.Skip)
	}
	return result, nil
}

// PreBind writes the reserved bindings to the API: the claimRef of every
// chosen PV (which reserves it for the claim) and the selected-node
// annotation of claims to provision. With bindMode Direct it then completes
// the static binds itself (complete.go); with PVController it leaves them to
// the PV controller. It then waits, woken by informer events, for whatever
// others must finish (provisioning, and binds left to the controller). If
// binding fails or times out it reverts the writes whose binds did not
// complete, so the volumes are Available again and the pod can be placed
// elsewhere.
func (pl *LocalVolumeBinding) PreBind(ctx context.Context, cs fwk.CycleState, pod *v1.Pod, nodeName string) *fwk.Status {
	s, err := readState(cs)
	if err != nil {
		return fwk.AsStatus(err)
	}
	r := s.reserved
	if r.empty() {
		return nil
	}
	logger := klog.FromContext(ctx)
	start := time.Now()
	written, err := pl.writeBindings(ctx, r)
	if err == nil && pl.directBind {
		err = pl.completeBinds(ctx, logger, written)
	}
	if err == nil {
		err = pl.waitBound(ctx, pod, r, written)
	}
	if err != nil {
		observePreBind(start, "failed")
		logger.Info("Binding volumes failed; reverting", "pod", klog.KObj(pod), "node", nodeName, "err", err)
		pl.revert(logger, pod, written)
		return fwk.AsStatus(fmt.Errorf("binding volumes: %w", err))
	}
	observePreBind(start, "bound")
	logger.V(2).Info("Volumes bound", "pod", klog.KObj(pod), "node", nodeName, "duration", time.Since(start))
	return nil
}

// written records the API writes PreBind made, for waiting and reverting.
type written struct {
	// pvs are the PVs as returned by the API server.
	pvs []StaticBinding
	// ours marks the pvs whose claimRef PreBind wrote (not found in place).
	ours []bool
	// complete marks the pvs whose bind PreBind completed (bindMode Direct).
	complete []bool
	// pvcs are the claims annotated for provisioning, as returned.
	pvcs []*v1.PersistentVolumeClaim
}

// writeBindings writes the claimRefs, in parallel, and then the
// provisioning annotations. On error, w holds what was written (a claimRef
// whose write failed is not marked ours, so revert leaves it alone).
func (pl *LocalVolumeBinding) writeBindings(ctx context.Context, r *reservation) (*written, error) {
	client := pl.handle.ClientSet()
	w := &written{pvs: make([]StaticBinding, len(r.static)), ours: make([]bool, len(r.static))}
	errs := make([]error, len(r.static))
	parallel(ctx, len(r.static), func(i int) {
		b := r.static[i]
		w.pvs[i] = b
		cur, ok := pl.index.APIObject(b.PV.Name)
		if ok && volume.IsVolumeBoundToClaim(cur, b.PVC) && cur.Spec.ClaimRef.UID == b.PVC.UID {
			// Already written (pre-bound with UID, or a pod sharing the claim).
			w.pvs[i].PV = cur
			return
		}
		newPV, err := client.CoreV1().PersistentVolumes().Update(ctx, b.PV, metav1.UpdateOptions{})
		if err != nil {
			errs[i] = fmt.Errorf("writing claimRef %s/%s to PersistentVolume %s: %w", b.PVC.Namespace, b.PVC.Name, b.PV.Name, err)
			return
		}
		w.pvs[i].PV = newPV
		w.ours[i] = true
	})
	if err := errors.Join(errs...); err != nil {
		return w, err
	}
	for _, c := range r.provisions {
		newPVC, err := client.CoreV1().PersistentVolumeClaims(c.Namespace).Update(ctx, c, metav1.UpdateOptions{})
		if err != nil {
			return w, fmt.Errorf("requesting provisioning of %s/%s on node %s: %w", c.Namespace, c.Name, r.node, err)
		}
		w.pvcs = append(w.pvcs, newPVC)
	}
	return w, nil
}

// parallel runs f(0..n-1), concurrently when there is more than one piece
// (API round trips dominate, so one goroutine per piece).
func parallel(ctx context.Context, n int, f func(i int)) {
	if n == 1 {
		f(0)
		return
	}
	workqueue.ParallelizeUntil(ctx, n, n, f)
}

// waitBound waits until every claim is bound, an error shows it will not
// be, or the bind timeout passes.
func (pl *LocalVolumeBinding) waitBound(ctx context.Context, pod *v1.Pod, r *reservation, w *written) error {
	if w.allComplete() && len(w.pvcs) == 0 {
		return nil
	}
	keys := []string{podKey(pod.Namespace, pod.Name)}
	for i, b := range w.pvs {
		if !w.isComplete(i) {
			keys = append(keys, pvKey(b.PV.Name), pvcKey(b.PVC.Namespace, b.PVC.Name))
		}
	}
	for _, c := range w.pvcs {
		keys = append(keys, pvcKey(c.Namespace, c.Name))
	}
	wake, unsubscribe := pl.waiters.subscribe(keys)
	defer unsubscribe()
	ctx, cancel := context.WithTimeout(ctx, pl.bindTimeout)
	defer cancel()
	for {
		done, err := pl.bindsComplete(pod, r.node, w)
		if err != nil || done {
			return err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("timed out after %s waiting for the PV controller to bind the pod's claims", pl.bindTimeout)
			}
			return ctx.Err()
		}
	}
}

// bindsComplete reads the informer caches (shared with the PV controller's view
// of the API) and reports whether all claims are bound, or an error if a
// bind can no longer complete.
func (pl *LocalVolumeBinding) bindsComplete(pod *v1.Pod, nodeName string, w *written) (bool, error) {
	if _, err := pl.podLister.Pods(pod.Namespace).Get(pod.Name); apierrors.IsNotFound(err) {
		return false, fmt.Errorf("pod %s/%s was deleted", pod.Namespace, pod.Name)
	}
	node, err := pl.nodeLister.Get(nodeName)
	if err != nil {
		return false, fmt.Errorf("node %s: %w", nodeName, err)
	}
	done := true
	for i, b := range w.pvs {
		if w.isComplete(i) {
			continue
		}
		pv, ok := pl.index.APIObject(b.PV.Name)
		if !ok {
			return false, fmt.Errorf("PersistentVolume %s was deleted", b.PV.Name)
		}
		if versioner.CompareResourceVersion(b.PV, pv) > 0 {
			done = false // our write has not reached the informer yet
			continue
		}
		if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != b.PVC.UID {
			return false, fmt.Errorf("PersistentVolume %s no longer refers to claim %s/%s", pv.Name, b.PVC.Namespace, b.PVC.Name)
		}
		if tpv := pl.translateForNode(pv, node); !admitsLabels(tpv, node) {
			return false, fmt.Errorf("PersistentVolume %s no longer admits node %s", pv.Name, nodeName)
		}
		pvc, err := pl.pvcLister.PersistentVolumeClaims(b.PVC.Namespace).Get(b.PVC.Name)
		if apierrors.IsNotFound(err) || (err == nil && (pvc.UID != b.PVC.UID || pvc.DeletionTimestamp != nil)) {
			return false, fmt.Errorf("PersistentVolumeClaim %s/%s was deleted", b.PVC.Namespace, b.PVC.Name)
		} else if err != nil {
			return false, err
		}
		if !fullyBound(pvc) {
			done = false
		}
	}
	for _, c := range w.pvcs {
		pvc, err := pl.pvcLister.PersistentVolumeClaims(c.Namespace).Get(c.Name)
		if apierrors.IsNotFound(err) || (err == nil && (pvc.UID != c.UID || pvc.DeletionTimestamp != nil)) {
			return false, fmt.Errorf("PersistentVolumeClaim %s/%s was deleted", c.Namespace, c.Name)
		} else if err != nil {
			return false, err
		}
		if versioner.CompareResourceVersion(c, pvc) > 0 {
			done = false
			continue
		}
		if pvc.Annotations[volume.AnnSelectedNode] != nodeName {
			// The provisioner clears the annotation to ask for rescheduling.
			return false, fmt.Errorf("provisioning failed for PersistentVolumeClaim %s/%s", c.Namespace, c.Name)
		}
		if pvc.Spec.VolumeName != "" {
			pv, ok := pl.index.APIObject(pvc.Spec.VolumeName)
			if !ok {
				done = false // the new PV may not have reached the informer
				continue
			}
			if tpv := pl.translateForNode(pv, node); !admitsLabels(tpv, node) {
				return false, fmt.Errorf("provisioned PersistentVolume %s does not admit node %s", pv.Name, nodeName)
			}
		}
		if !fullyBound(pvc) {
			done = false
		}
	}
	return done, nil
}

func (w *written) isComplete(i int) bool { return i < len(w.complete) && w.complete[i] }

func (w *written) allComplete() bool {
	for i := range w.pvs {
		if !w.isComplete(i) {
			return false
		}
	}
	return true
}

func fullyBound(pvc *v1.PersistentVolumeClaim) bool {
	return pvc.Spec.VolumeName != "" && metav1.HasAnnotation(pvc.ObjectMeta, volume.AnnBindCompleted)
}
