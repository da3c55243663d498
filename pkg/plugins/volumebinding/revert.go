package volumebinding

import (
	"context"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/component-helpers/storage/volume"
	"k8s.io/klog/v2"
)

// revertTimeout bounds the API calls of a revert, which runs even when the
// binding cycle's context is already cancelled.
const revertTimeout = 30 * time.Second

// revert undoes PreBind's API writes whose binds did not complete: a PV's
// claimRef is cleared unless its claim is bound to it, and a selected-node
// annotation is removed unless the claim got a volume. Every decision is
// made on objects read fresh from the API server, and every write carries
// their resourceVersion, so a bind the PV controller completes concurrently
// is never undone (kubernetes#121436).
func (pl *LocalVolumeBinding) revert(logger klog.Logger, pod *v1.Pod, w *written) {
	if w == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), revertTimeout)
	defer cancel()
	for i, b := range w.pvs {
		if !w.ours[i] {
			continue
		}
		result, err := pl.revertPV(ctx, b)
		if err != nil {
			logger.Error(err, "Reverting PersistentVolume claimRef failed", "pv", b.PV.Name, "pvc", klog.KObj(b.PVC))
			result = "error"
		}
		bindReverts.WithLabelValues("PersistentVolume", result).Inc()
		if result == "reverted" {
			pl.event(pod, v1.EventTypeNormal, "BerthBindReverted",
				"Released PersistentVolume %s reserved for claim %s/%s: binding did not complete", b.PV.Name, b.PVC.Namespace, b.PVC.Name)
		}
	}
	for _, c := range w.pvcs {
		result, err := pl.revertPVC(ctx, c)
		if err != nil {
			logger.Error(err, "Reverting selected-node annotation failed", "pvc", klog.KObj(c))
			result = "error"
		}
		bindReverts.WithLabelValues("PersistentVolumeClaim", result).Inc()
	}
}

// revertPV clears the claimRef PreBind wrote. It returns "reverted", or
// "kept" when the bind completed or the PV moved on.
func (pl *LocalVolumeBinding) revertPV(ctx context.Context, b StaticBinding) (string, error) {
	client := pl.handle.ClientSet().CoreV1()
	result := "kept"
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pv, err := client.PersistentVolumes().Get(ctx, b.PV.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		} else if err != nil {
			return err
		}
		ref := pv.Spec.ClaimRef
		if ref == nil || ref.UID != b.PVC.UID || ref.Name != b.PVC.Name || ref.Namespace != b.PVC.Namespace {
			return nil // someone else's now
		}
		pvc, err := client.PersistentVolumeClaims(b.PVC.Namespace).Get(ctx, b.PVC.Name, metav1.GetOptions{})
		if err == nil && pvc.UID == b.PVC.UID && pvc.Spec.VolumeName == pv.Name {
			return nil // the PV controller completed the bind; leave it
		} else if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		pv = pv.DeepCopy()
		pv.Spec.ClaimRef = nil
		delete(pv.Annotations, volume.AnnBoundByController)
		if _, err := client.PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{}); err != nil {
			return err
		}
		result = "reverted"
		return nil
	})
	return result, err
}

// revertPVC removes the selected-node annotation from a claim that did not
// get a volume, so the provisioner stops and the scheduler can choose again.
func (pl *LocalVolumeBinding) revertPVC(ctx context.Context, c *v1.PersistentVolumeClaim) (string, error) {
	client := pl.handle.ClientSet().CoreV1()
	result := "kept"
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pvc, err := client.PersistentVolumeClaims(c.Namespace).Get(ctx, c.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		} else if err != nil {
			return err
		}
		if pvc.UID != c.UID || pvc.Spec.VolumeName != "" || pvc.Annotations[volume.AnnSelectedNode] != c.Annotations[volume.AnnSelectedNode] {
			return nil
		}
		pvc = pvc.DeepCopy()
		delete(pvc.Annotations, volume.AnnSelectedNode)
		if _, err := client.PersistentVolumeClaims(pvc.Namespace).Update(ctx, pvc, metav1.UpdateOptions{}); err != nil {
			return err
		}
		result = "reverted"
		return nil
	})
	return result, err
}

func (pl *LocalVolumeBinding) event(pod *v1.Pod, eventType, reason, format string, args ...interface{}) {
	if r := pl.handle.EventRecorder(); r != nil {
		r.Eventf(pod, nil, eventType, reason, "Binding", format, args...)
	}
}
