package volumebinding

import (
	"context"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/component-helpers/storage/ephemeral"
	"k8s.io/component-helpers/storage/volume"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/util"
)

// EventsToRegister lists the cluster events that can make a pod rejected by
// this plugin schedulable, each with a hint that requeues the pod only when
// the event can help it.
func (pl *LocalVolumeBinding) EventsToRegister(_ context.Context) ([]fwk.ClusterEventWithHint, error) {
	return []fwk.ClusterEventWithHint{
		// A volume the pod could use appears, is freed, or grows.
		{Event: fwk.ClusterEvent{Resource: fwk.PersistentVolume, ActionType: fwk.Add | fwk.Update}, QueueingHintFn: pl.hintPV},
		// The pod's claims are created, bound, or changed.
		{Event: fwk.ClusterEvent{Resource: fwk.PersistentVolumeClaim, ActionType: fwk.Add | fwk.Update}, QueueingHintFn: pl.hintPVC},
		// A missing class appears, or allowedTopologies change.
		{Event: fwk.ClusterEvent{Resource: fwk.StorageClass, ActionType: fwk.Add | fwk.Update}, QueueingHintFn: pl.hintStorageClass},
		// Node labels decide which volumes and topologies a node has.
		{Event: fwk.ClusterEvent{Resource: fwk.Node, ActionType: fwk.Add | fwk.UpdateNodeLabel}, QueueingHintFn: pl.hintNode},
		// In-tree volumes are translated to CSI per node.
		{Event: fwk.ClusterEvent{Resource: fwk.CSINode, ActionType: fwk.Add | fwk.Update}, QueueingHintFn: pl.hintCSINode},
		// Capacity tracking for dynamic provisioning.
		{Event: fwk.ClusterEvent{Resource: fwk.CSIDriver, ActionType: fwk.Update}, QueueingHintFn: pl.hintCSIDriver},
		{Event: fwk.ClusterEvent{Resource: fwk.CSIStorageCapacity, ActionType: fwk.Add | fwk.Update}, QueueingHintFn: pl.hintCapacity},
	}, nil
}

// podClaimClasses returns the pod's unbound claims keyed by name, with their
// StorageClass names.
func (pl *LocalVolumeBinding) podClaimNames(pod *v1.Pod) map[string]bool {
	names := map[string]bool{}
	for i := range pod.Spec.Volumes {
		vol := &pod.Spec.Volumes[i]
		switch {
		case vol.PersistentVolumeClaim != nil:
			names[vol.PersistentVolumeClaim.ClaimName] = true
		case vol.Ephemeral != nil:
			names[ephemeral.VolumeClaimName(pod, vol)] = true
		}
	}
	return names
}

// hintPV requeues the pod when a PV that could serve one of its unbound
// claims is now usable: it is new, or it just became free, or its size,
// labels, affinity or phase changed while free; or when a PV its bound claim
// names appears.
func (pl *LocalVolumeBinding) hintPV(logger klog.Logger, pod *v1.Pod, oldObj, newObj interface{}) (fwk.QueueingHint, error) {
	oldPV, newPV, err := util.As[*v1.PersistentVolume](oldObj, newObj)
	if err != nil {
		return fwk.Queue, err
	}
	pl.refreshPV(newPV.Name)
	usable := func(pv *v1.PersistentVolume) bool {
		return pv != nil && pv.DeletionTimestamp == nil && (pv.Spec.ClaimRef == nil && pv.Status.Phase == v1.VolumeAvailable)
	}
	class := volume.GetPersistentVolumeClass(newPV)
	for name := range pl.podClaimNames(pod) {
		pvc, err := pl.pvcLister.PersistentVolumeClaims(pod.Namespace).Get(name)
		if err != nil {
			continue
		}
		if pvc.Spec.VolumeName == newPV.Name {
			return fwk.Queue, nil // the claim's own (bound or named) volume
		}
		if ref := newPV.Spec.ClaimRef; ref != nil && ref.Namespace == pvc.Namespace && ref.Name == pvc.Name {
			return fwk.Queue, nil // pre-bound to the claim
		}
		if pvc.Spec.VolumeName != "" || volume.GetPersistentVolumeClaimClass(pvc) != class || !usable(newPV) {
			continue
		}
		if oldPV == nil || !usable(oldPV) ||
			!apiequality.Semantic.DeepEqual(oldPV.Spec.Capacity, newPV.Spec.Capacity) ||
			!apiequality.Semantic.DeepEqual(oldPV.Labels, newPV.Labels) ||
			!apiequality.Semantic.DeepEqual(oldPV.Spec.NodeAffinity, newPV.Spec.NodeAffinity) ||
			!apiequality.Semantic.DeepEqual(oldPV.Spec.AccessModes, newPV.Spec.AccessModes) {
			logger.V(5).Info("PersistentVolume became usable for the pod's claim", "pod", klog.KObj(pod), "pv", klog.KObj(newPV), "pvc", klog.KObj(pvc))
			return fwk.Queue, nil
		}
	}
	return fwk.QueueSkip, nil
}

// hintPVC requeues the pod when one of its own claims changes.
func (pl *LocalVolumeBinding) hintPVC(logger klog.Logger, pod *v1.Pod, oldObj, newObj interface{}) (fwk.QueueingHint, error) {
	_, pvc, err := util.As[*v1.PersistentVolumeClaim](oldObj, newObj)
	if err != nil {
		return fwk.Queue, err
	}
	if pvc.Namespace == pod.Namespace && pl.podClaimNames(pod)[pvc.Name] {
		return fwk.Queue, nil
	}
	return fwk.QueueSkip, nil
}

// hintStorageClass requeues on a new class (a claim may have named a class
// that did not exist) and on allowedTopologies changes.
func (pl *LocalVolumeBinding) hintStorageClass(logger klog.Logger, pod *v1.Pod, oldObj, newObj interface{}) (fwk.QueueingHint, error) {
	oldSC, newSC, err := util.As[*storagev1.StorageClass](oldObj, newObj)
	if err != nil {
		return fwk.Queue, err
	}
	if oldSC == nil || !apiequality.Semantic.DeepEqual(oldSC.AllowedTopologies, newSC.AllowedTopologies) {
		return fwk.Queue, nil
	}
	return fwk.QueueSkip, nil
}

func (pl *LocalVolumeBinding) hintCSINode(logger klog.Logger, pod *v1.Pod, oldObj, newObj interface{}) (fwk.QueueingHint, error) {
	oldN, newN, err := util.As[*storagev1.CSINode](oldObj, newObj)
	if err != nil {
		return fwk.Queue, err
	}
	if oldN == nil || oldN.Annotations[v1.MigratedPluginsAnnotationKey] != newN.Annotations[v1.MigratedPluginsAnnotationKey] {
		return fwk.Queue, nil
	}
	return fwk.QueueSkip, nil
}

// hintCSIDriver requeues when a driver stops tracking capacity.
func (pl *LocalVolumeBinding) hintCSIDriver(logger klog.Logger, pod *v1.Pod, oldObj, newObj interface{}) (fwk.QueueingHint, error) {
	oldD, newD, err := util.As[*storagev1.CSIDriver](oldObj, newObj)
	if err != nil {
		return fwk.Queue, err
	}
	was := oldD.Spec.StorageCapacity != nil && *oldD.Spec.StorageCapacity
	is := newD.Spec.StorageCapacity != nil && *newD.Spec.StorageCapacity
	if was && !is {
		return fwk.Queue, nil
	}
	return fwk.QueueSkip, nil
}

// hintCapacity requeues when capacity appears or grows.
func (pl *LocalVolumeBinding) hintCapacity(logger klog.Logger, pod *v1.Pod, oldObj, newObj interface{}) (fwk.QueueingHint, error) {
	oldC, newC, err := util.As[*storagev1.CSIStorageCapacity](oldObj, newObj)
	if err != nil {
		return fwk.Queue, err
	}
	if oldC == nil {
		return fwk.Queue, nil
	}
	ol, nl := VolumeLimit(oldC), VolumeLimit(newC)
	if nl != nil && (ol == nil || nl.Cmp(*ol) > 0) {
		return fwk.Queue, nil
	}
	return fwk.QueueSkip, nil
}

// hintNode requeues on every node addition or label change (the framework
// already filters other updates), after making sure the index knows the
// node's hostname label, which PreFilter uses to resolve pinned volumes.
func (pl *LocalVolumeBinding) hintNode(logger klog.Logger, pod *v1.Pod, oldObj, newObj interface{}) (fwk.QueueingHint, error) {
	_, n, err := util.As[*v1.Node](oldObj, newObj)
	if err != nil {
		return fwk.Queue, err
	}
	pl.refreshNode(n.Name)
	return fwk.Queue, nil
}
