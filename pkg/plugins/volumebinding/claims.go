package volumebinding

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/component-helpers/storage/ephemeral"
	"k8s.io/component-helpers/storage/volume"

	"github.com/berth-dev/berth/pkg/plugins/volumebinding/pvindex"
)

// boundClaim is a claim whose bind the PV controller has completed.
type boundClaim struct {
	pvc    *v1.PersistentVolumeClaim
	pvName string
}

// claimInfo is an unbound WaitForFirstConsumer claim with its requirements
// parsed once per scheduling cycle.
type claimInfo struct {
	pvc      *v1.PersistentVolumeClaim
	key      string
	class    *storagev1.StorageClass
	request  int64
	selector labels.Selector // nil matches every volume
	// provisionable is true when the class names a real provisioner.
	provisionable bool
	// prebound is the PV whose claimRef already names this claim (set by an
	// admin, or by a Reserve of another pod sharing the claim); the claim
	// can use no other volume.
	prebound *pvindex.Volume
	// selectedNode is set when provisioning was already requested for a
	// node; the claim can only be satisfied there.
	selectedNode string
}

// podClaims is PreFilter's view of a pod's claims.
type podClaims struct {
	bound   []boundClaim
	delayed []*claimInfo
}

// claimError is a PreFilter verdict that no node can fix.
type claimError struct{ msg string }

func (e *claimError) Error() string { return e.msg }

// gatherClaims reads the pod's PVCs and generic ephemeral claims from the
// informer cache and sorts them into bound and delayed claims. Problems that
// no node can fix are returned as *claimError.
func (pl *LocalVolumeBinding) gatherClaims(pod *v1.Pod) (*podClaims, error) {
	pc := &podClaims{}
	var unboundImmediate []string
	for i := range pod.Spec.Volumes {
		vol := &pod.Spec.Volumes[i]
		var name string
		isEphemeral := false
		switch {
		case vol.PersistentVolumeClaim != nil:
			name = vol.PersistentVolumeClaim.ClaimName
		case vol.Ephemeral != nil:
			name = ephemeral.VolumeClaimName(pod, vol)
			isEphemeral = true
		default:
			continue
		}
		key := pod.Namespace + "/" + name
		pvc, err := pl.pvcLister.PersistentVolumeClaims(pod.Namespace).Get(name)
		if err != nil {
			if apierrors.IsNotFound(err) {
				if isEphemeral {
					return nil, &claimError{fmt.Sprintf("waiting for the ephemeral volume controller to create PersistentVolumeClaim %s", key)}
				}
				return nil, &claimError{fmt.Sprintf("PersistentVolumeClaim %s not found", key)}
			}
			return nil, err
		}
		if pvc.Status.Phase == v1.ClaimLost {
			return nil, &claimError{fmt.Sprintf("PersistentVolumeClaim %s is Lost: its PersistentVolume %q no longer exists", key, pvc.Spec.VolumeName)}
		}
		if pvc.DeletionTimestamp != nil {
			return nil, &claimError{fmt.Sprintf("PersistentVolumeClaim %s is being deleted", key)}
		}
		if isEphemeral {
			if err := ephemeral.VolumeIsForPod(pod, pvc); err != nil {
				return nil, &claimError{err.Error()}
			}
		}
		if pvc.Spec.VolumeName != "" && metav1.HasAnnotation(pvc.ObjectMeta, volume.AnnBindCompleted) {
			pc.bound = append(pc.bound, boundClaim{pvc: pvc, pvName: pvc.Spec.VolumeName})
			continue
		}
		className := volume.GetPersistentVolumeClaimClass(pvc)
		var class *storagev1.StorageClass
		if className != "" {
			class, err = pl.classLister.Get(className)
			if apierrors.IsNotFound(err) {
				return nil, &claimError{fmt.Sprintf("StorageClass %q of PersistentVolumeClaim %s not found", className, key)}
			} else if err != nil {
				return nil, err
			}
		}
		delayed := class != nil && class.VolumeBindingMode != nil && *class.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer
		if !delayed || pvc.Spec.VolumeName != "" {
			// Immediate claims (and claims that name their volume) are bound
			// by the PV controller, not the scheduler.
			unboundImmediate = append(unboundImmediate, key)
			continue
		}
		ci, err := pl.newClaimInfo(pvc, key, class)
		if err != nil {
			return nil, err
		}
		pc.delayed = append(pc.delayed, ci)
	}
	if len(unboundImmediate) > 0 {
		return nil, &claimError{fmt.Sprintf("pod has unbound immediate PersistentVolumeClaims (%s): waiting for the PV controller to bind them", strings.Join(unboundImmediate, ", "))}
	}
	return pc, nil
}

func (pl *LocalVolumeBinding) newClaimInfo(pvc *v1.PersistentVolumeClaim, key string, class *storagev1.StorageClass) (*claimInfo, error) {
	ci := &claimInfo{
		pvc:           pvc,
		key:           key,
		class:         class,
		provisionable: class.Provisioner != "" && class.Provisioner != volume.NotSupportedProvisioner,
		selectedNode:  pvc.Annotations[volume.AnnSelectedNode],
	}
	if q, ok := pvc.Spec.Resources.Requests[v1.ResourceStorage]; ok {
		ci.request = q.Value()
	}
	if pvc.Spec.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(pvc.Spec.Selector)
		if err != nil {
			return nil, &claimError{fmt.Sprintf("PersistentVolumeClaim %s: invalid spec.selector: %v", key, err)}
		}
		ci.selector = sel
	}
	for _, v := range pl.index.ReferencingClaim(pvc.Namespace, pvc.Name) {
		if volume.IsVolumeBoundToClaim(v.PV, pvc) && v.Invalid == nil {
			ci.prebound = v
			break
		}
	}
	return ci, nil
}

// requestString renders a claim's request as written in its spec.
func requestString(pvc *v1.PersistentVolumeClaim) string {
	if q, ok := pvc.Spec.Resources.Requests[v1.ResourceStorage]; ok {
		return q.String()
	}
	return "0"
}
