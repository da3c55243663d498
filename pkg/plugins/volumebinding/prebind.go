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

// PreBind writes the reserved bindings to the API (PV claimRef; the
// selected-node annotation for claims to provision), then waits until the PV
// controller has completed every bind, woken by informer events. If binding
// fails or times out it reverts the writes that did not complete, so the
// volumes are Available again and the pod can be placed elsewhere.
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
	// pvcs are the claims annotated for provisioning, as returned.
	pvcs []*v1.PersistentVolumeClaim
}

func (pl *LocalVolumeBinding) writeBindings(ctx context.Context, r *reservation) (*written, error) {
	w := &written{}
	client := pl.handle.ClientSet()
	for _, b := range r.static {
		cur, ok := pl.index.APIObject(b.PV.Name)
		if ok && volume.IsVolumeBoundToClaim(cur, b.PVC) && cur.Spec.ClaimRef.UID == b.PVC.UID {
			// Already written (pre-bound with UID, or a pod sharing the claim).
			nb := b
			nb.PV = cur
			w.pvs = append(w.pvs, nb)
			w.ours = append(w.ours, false)
			continue
		}
		newPV, err := client.CoreV1().PersistentVolumes().Update(ctx, b.PV, metav1.UpdateOptions{})
		if err != nil {
			return w, fmt.Errorf("writing claimRef %s/%s to PersistentVolume %s: %w", b.PVC.Namespace, b.PVC.Name, b.PV.Name, err)
		}
		nb := b
		nb.PV = newPV
		w.pvs = append(w.pvs, nb)
		w.ours = append(w.ours, true)
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

// waitBound waits until every claim is bound, an error shows it will not
// be, or the bind timeout passes.
func (pl *LocalVolumeBinding) waitBound(ctx context.Context, pod *v1.Pod, r *reservation, w *written) error {
	keys := []string{podKey(pod.Namespace, pod.Name)}
	for _, b := range w.pvs {
		keys = append(keys, pvKey(b.PV.Name), pvcKey(b.PVC.Namespace, b.PVC.Name))
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
	for _, b := range w.pvs {
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

func fullyBound(pvc *v1.PersistentVolumeClaim) bool {
	return pvc.Spec.VolumeName != "" && metav1.HasAnnotation(pvc.ObjectMeta, volume.AnnBindCompleted)
}
