package volumebinding

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/component-helpers/storage/volume"
	"k8s.io/klog/v2"
	volumeutil "k8s.io/kubernetes/pkg/volume/util"
)

// Completing a bind (bindMode Direct).
//
// Once PreBind's claimRef write has reserved a PV for a claim, the rest of
// the bind is bookkeeping the PV controller would otherwise do in its
// single claim worker, one claim at a time: at a few hundred pods that
// worker, not the scheduler, sets the pace (see BENCHMARKS.md). PreBind
// does it itself, in the pod's binding goroutine, with the writes and
// annotations of the controller's bind():
//
//  1. claim spec.volumeName, pv.kubernetes.io/bind-completed and
//     pv.kubernetes.io/bound-by-controller: the commit point; from here on
//     the bind is done and is never reverted;
//  2. then, in parallel, PV status phase Bound, and claim status Bound with
//     the PV's capacity, access modes and VolumeAttributesClass.
//
// The controller sets the PV's phase before the claim's spec; committing
// first is as safe (the claimRef already reserves the PV) and cheaper: the
// controller's claim worker, woken by the claimRef write, then more often
// finds the claim bound, whereas an unbound claim costs it a scan of every
// PV (findBestMatchForClaim). Both status writes follow the commit, so
// they can run at once.
//
// The PV controller keeps running and may perform the same steps from its
// cache at the same time. Every write is an Update carrying the
// resourceVersion it was computed from, so of two writers one gets a
// Conflict. The loser re-reads the object from the API server and
// writes again only if the step is still undone, so neither undoes the
// other and a fully bound pair is left for the controller to find
// consistent.

// completionStep names a step for errors and metrics.
type completionStep string

const (
	stepPVStatus   completionStep = "PersistentVolume status"
	stepClaimSpec  completionStep = "PersistentVolumeClaim spec"
	stepClaimPhase completionStep = "PersistentVolumeClaim status"
)

// completeBind performs the steps for one claim whose PV's claimRef is
// written (b.PV is the API server's copy after that write). specDone
// reports whether step 1 took effect: after it, an error is left to the
// PV controller, which completes the status of a pair bound in spec.
func (pl *LocalVolumeBinding) completeBind(ctx context.Context, b StaticBinding) (specDone bool, err error) {
	pvc, err := pl.setClaimVolume(ctx, b, b.PV)
	if err != nil {
		return false, err
	}
	var pvErr error
	var wg sync.WaitGroup
	wg.Go(func() { pvErr = pl.setPVBound(ctx, b) })
	claimErr := pl.setClaimBound(ctx, b, pvc, b.PV)
	wg.Wait()
	return true, errors.Join(claimErr, pvErr)
}

// setPVBound sets the PV's phase (step 2).
func (pl *LocalVolumeBinding) setPVBound(ctx context.Context, b StaticBinding) error {
	client := pl.handle.ClientSet().CoreV1().PersistentVolumes()
	_, err := ensure(stepPVStatus, b.PV,
		func(pv *v1.PersistentVolume) (*v1.PersistentVolume, bool, error) {
			if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != b.PVC.UID {
				return nil, false, fmt.Errorf("PersistentVolume %s no longer refers to claim %s/%s", pv.Name, b.PVC.Namespace, b.PVC.Name)
			}
			if pv.Status.Phase == v1.VolumeBound {
				return pv, false, nil
			}
			c := pv.DeepCopy()
			c.Status.Phase = v1.VolumeBound
			c.Status.Message = ""
			return c, true, nil
		},
		func(pv *v1.PersistentVolume) (*v1.PersistentVolume, error) {
			return client.UpdateStatus(ctx, pv, metav1.UpdateOptions{})
		},
		func() (*v1.PersistentVolume, error) { return client.Get(ctx, b.PV.Name, metav1.GetOptions{}) })
	if err != nil {
		return fmt.Errorf("setting %s %s to Bound: %w", stepPVStatus, b.PV.Name, err)
	}
	return nil
}

// setClaimVolume is step 1, the commit point of the bind.
func (pl *LocalVolumeBinding) setClaimVolume(ctx context.Context, b StaticBinding, pv *v1.PersistentVolume) (*v1.PersistentVolumeClaim, error) {
	client := pl.handle.ClientSet().CoreV1().PersistentVolumeClaims(b.PVC.Namespace)
	pvc, err := ensure(stepClaimSpec, b.PVC,
		func(pvc *v1.PersistentVolumeClaim) (*v1.PersistentVolumeClaim, bool, error) {
			if pvc.UID != b.PVC.UID || pvc.DeletionTimestamp != nil {
				return nil, false, fmt.Errorf("PersistentVolumeClaim %s/%s was deleted", b.PVC.Namespace, b.PVC.Name)
			}
			if pvc.Spec.VolumeName != "" && pvc.Spec.VolumeName != pv.Name {
				return nil, false, fmt.Errorf("PersistentVolumeClaim %s/%s is bound to PersistentVolume %s", pvc.Namespace, pvc.Name, pvc.Spec.VolumeName)
			}
			c := pvc.DeepCopy()
			dirty := false
			if c.Spec.VolumeName != pv.Name {
				c.Spec.VolumeName = pv.Name
				if !metav1.HasAnnotation(c.ObjectMeta, volume.AnnBoundByController) {
					metav1.SetMetaDataAnnotation(&c.ObjectMeta, volume.AnnBoundByController, "yes")
				}
				dirty = true
			}
			if !metav1.HasAnnotation(c.ObjectMeta, volume.AnnBindCompleted) {
				metav1.SetMetaDataAnnotation(&c.ObjectMeta, volume.AnnBindCompleted, "yes")
				dirty = true
			}
			if !dirty {
				return pvc, false, nil
			}
			return c, true, nil
		},
		func(pvc *v1.PersistentVolumeClaim) (*v1.PersistentVolumeClaim, error) {
			return client.Update(ctx, pvc, metav1.UpdateOptions{})
		},
		func() (*v1.PersistentVolumeClaim, error) { return client.Get(ctx, b.PVC.Name, metav1.GetOptions{}) })
	if err != nil {
		return nil, fmt.Errorf("binding %s %s/%s to PersistentVolume %s: %w", stepClaimSpec, b.PVC.Namespace, b.PVC.Name, pv.Name, err)
	}
	return pvc, nil
}

// setClaimBound is step 2 for the claim, with the status fields the PV
// controller's updateClaimStatus sets when a claim becomes Bound.
func (pl *LocalVolumeBinding) setClaimBound(ctx context.Context, b StaticBinding, pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume) error {
	client := pl.handle.ClientSet().CoreV1().PersistentVolumeClaims(b.PVC.Namespace)
	_, err := ensure(stepClaimPhase, pvc,
		func(pvc *v1.PersistentVolumeClaim) (*v1.PersistentVolumeClaim, bool, error) {
			if pvc.UID != b.PVC.UID || pvc.Spec.VolumeName != pv.Name {
				return nil, false, fmt.Errorf("PersistentVolumeClaim %s/%s changed: no longer bound to PersistentVolume %s", b.PVC.Namespace, b.PVC.Name, pv.Name)
			}
			return claimStatusBound(pvc, pv)
		},
		func(pvc *v1.PersistentVolumeClaim) (*v1.PersistentVolumeClaim, error) {
			return client.UpdateStatus(ctx, pvc, metav1.UpdateOptions{})
		},
		func() (*v1.PersistentVolumeClaim, error) { return client.Get(ctx, b.PVC.Name, metav1.GetOptions{}) })
	if err != nil {
		return fmt.Errorf("setting %s %s/%s to Bound: %w", stepClaimPhase, b.PVC.Namespace, b.PVC.Name, err)
	}
	return nil
}

// ensure brings an object to the state change computes from it. change
// returns the object to write and whether a write is needed, or an error
// when the step can no longer be done. On a Conflict (the PV controller, or
// another binding cycle, wrote first; or cur was a stale cached copy) the
// object is read again with get and change decides afresh, so a step
// someone else completed is not written twice (client-go's DefaultRetry
// bounds the attempts). It returns the object as last written or read.
func ensure[T any](step completionStep, cur T, change func(T) (T, bool, error), write func(T) (T, error), get func() (T, error)) (T, error) {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		next, dirty, err := change(cur)
		if err != nil || !dirty {
			return err
		}
		written, err := write(next)
		if err == nil {
			cur = written
			return nil
		}
		if apierrors.IsConflict(err) {
			countBindConflict(step)
			fresh, gerr := get()
			if gerr != nil {
				return gerr
			}
			cur = fresh
		}
		return err
	})
	return cur, err
}

// claimStatusBound returns a copy of pvc with the status the PV controller
// gives a claim bound to pv, and whether that differs from pvc's.
func claimStatusBound(pvc *v1.PersistentVolumeClaim, pv *v1.PersistentVolume) (*v1.PersistentVolumeClaim, bool, error) {
	if pvc.Status.Phase == v1.ClaimBound {
		// Already Bound: the PV controller owns the status from here on
		// (resizes may make capacity differ on purpose).
		return pvc, false, nil
	}
	c := pvc.DeepCopy()
	c.Status.Phase = v1.ClaimBound
	if !reflect.DeepEqual(c.Status.AccessModes, pv.Spec.AccessModes) {
		c.Status.AccessModes = pv.Spec.AccessModes
	}
	capacity, ok := pv.Spec.Capacity[v1.ResourceStorage]
	if !ok {
		return nil, false, fmt.Errorf("PersistentVolume %s has no storage capacity", pv.Name)
	}
	if pre, ok := pv.Annotations[volumeutil.AnnPreResizeCapacity]; ok {
		// The volume awaits a filesystem resize: report the size the
		// file system has now, as the PV controller does.
		if q, err := resource.ParseQuantity(pre); err == nil {
			capacity = q
		}
	}
	c.Status.Capacity = v1.ResourceList{v1.ResourceStorage: capacity}
	// Only while the claim becomes Bound, as the controller does: afterwards
	// the external resizer owns the field.
	if !reflect.DeepEqual(c.Status.CurrentVolumeAttributesClassName, pv.Spec.VolumeAttributesClassName) {
		c.Status.CurrentVolumeAttributesClassName = pv.Spec.VolumeAttributesClassName
	}
	return c, true, nil
}

// completeBinds runs completeBind for every claim whose claimRef PreBind
// wrote or found, in parallel (the claims of one pod are independent).
// It marks w.complete for claims fully bound. It fails if a bind could not
// be committed (step 1); a failed status write after the commit is logged
// and left to the PV controller, which PreBind then waits for.
func (pl *LocalVolumeBinding) completeBinds(ctx context.Context, logger klog.Logger, w *written) error {
	w.complete = make([]bool, len(w.pvs))
	errs := make([]error, len(w.pvs))
	parallel(ctx, len(w.pvs), func(i int) {
		specDone, err := pl.completeBind(ctx, w.pvs[i])
		switch {
		case err == nil:
			w.complete[i] = true
		case specDone:
			logger.Info("Claim bound; leaving its status to the PV controller", "pvc", klog.KObj(w.pvs[i].PVC), "pv", w.pvs[i].PV.Name, "err", err)
		default:
			errs[i] = err
		}
	})
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
