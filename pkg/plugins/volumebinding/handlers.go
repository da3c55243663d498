package volumebinding

import (
	"errors"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// addEventHandlers keeps the PV index current and wakes PreBind waiters.
func (pl *LocalVolumeBinding) addEventHandlers(logger klog.Logger, f informers.SharedInformerFactory) error {
	pvReg, err1 := f.Core().V1().PersistentVolumes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj interface{}) { pl.onPV(logger, obj) },
		UpdateFunc: func(_, obj interface{}) { pl.onPV(logger, obj) },
		DeleteFunc: func(obj interface{}) {
			if pv, ok := unwrap[*v1.PersistentVolume](obj); ok {
				pl.index.DeletePV(pv.Name)
				pl.forgetInvalid(pv.Name)
				pl.waiters.notify(pvKey(pv.Name))
			}
		},
	})
	nodeReg, err2 := f.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj interface{}) { pl.onNode(obj) },
		UpdateFunc: func(_, obj interface{}) { pl.onNode(obj) },
		DeleteFunc: func(obj interface{}) {
			if n, ok := unwrap[*v1.Node](obj); ok {
				pl.index.DeleteNode(n.Name)
			}
		},
	})
	pvcReg, err3 := f.Core().V1().PersistentVolumeClaims().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj interface{}) { pl.onPVC(obj) },
		UpdateFunc: func(_, obj interface{}) { pl.onPVC(obj) },
		DeleteFunc: func(obj interface{}) { pl.onPVC(obj) },
	})
	_, err4 := f.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj interface{}) {
			if p, ok := unwrap[*v1.Pod](obj); ok {
				pl.waiters.notify(podKey(p.Namespace, p.Name))
			}
		},
	})
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return err
	}
	pl.synced = append(pl.synced, pvReg, nodeReg, pvcReg)
	return nil
}

func (pl *LocalVolumeBinding) onPV(logger klog.Logger, obj interface{}) {
	pv, ok := unwrap[*v1.PersistentVolume](obj)
	if !ok {
		return
	}
	v := pl.index.SetPV(pv)
	if v != nil && v.Invalid != nil {
		pl.reportInvalid(logger, pv, v.Invalid)
	} else {
		pl.forgetInvalid(pv.Name)
	}
	pl.waiters.notify(pvKey(pv.Name))
	if ref := pv.Spec.ClaimRef; ref != nil {
		// Also wake waiters on the claim: PreBind does not know the name of
		// a dynamically provisioned PV when it subscribes, and the PV may
		// reach this informer after the claim that names it. Without this
		// PreBind missed that wake-up and waited for the bind timeout.
		pl.waiters.notify(pvcKey(ref.Namespace, ref.Name))
	}
}

func (pl *LocalVolumeBinding) onNode(obj interface{}) {
	if n, ok := unwrap[*v1.Node](obj); ok {
		pl.index.SetNode(n)
	}
}

func (pl *LocalVolumeBinding) onPVC(obj interface{}) {
	if c, ok := unwrap[*v1.PersistentVolumeClaim](obj); ok {
		pl.waiters.notify(pvcKey(c.Namespace, c.Name))
	}
}

// reportInvalid emits one Warning event per version of a PV that cannot be
// used for scheduling; the volume is skipped, never a reason to fail.
func (pl *LocalVolumeBinding) reportInvalid(logger klog.Logger, pv *v1.PersistentVolume, err error) {
	pl.invalidMu.Lock()
	seen := pl.invalidSeen[pv.Name] == pv.ResourceVersion
	pl.invalidSeen[pv.Name] = pv.ResourceVersion
	pl.invalidMu.Unlock()
	if seen {
		return
	}
	logger.Info("Skipping PersistentVolume that cannot be used for scheduling", "pv", klog.KObj(pv), "err", err)
	invalidVolumes.Inc()
	if r := pl.handle.EventRecorder(); r != nil {
		r.Eventf(pv, nil, v1.EventTypeWarning, "BerthVolumeSkipped", "Scheduling",
			"PersistentVolume %s is ignored by %s: %v", pv.Name, Name, err)
	}
}

// forgetInvalid drops a PV from invalidSeen once it is valid again or
// deleted; without this the map grew by one entry per invalid PV ever seen.
func (pl *LocalVolumeBinding) forgetInvalid(name string) {
	pl.invalidMu.Lock()
	delete(pl.invalidSeen, name)
	pl.invalidMu.Unlock()
}

// unwrap returns the typed object of an informer event, including the final
// state of a deleted object.
func unwrap[T any](obj interface{}) (T, bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	t, ok := obj.(T)
	return t, ok
}

func pvKey(name string) string      { return "pv/" + name }
func pvcKey(ns, name string) string { return "pvc/" + ns + "/" + name }
func podKey(ns, name string) string { return "pod/" + ns + "/" + name }

// refreshPV brings the index entry of a PV up to date with the informer's
// store. The scheduler runs queueing hints from its own event handler,
// which may run before this plugin's handler has indexed the same event; a
// pod requeued by a new or freed PV would then be filtered against the old
// index, rejected again, and wait for the periodic flush. Hints call this
// first so the requeued pod sees the volume.
func (pl *LocalVolumeBinding) refreshPV(name string) {
	pv, err := pl.pvLister.Get(name)
	if apierrors.IsNotFound(err) {
		pl.index.DeletePV(name)
		return
	}
	if err == nil {
		pl.index.SetPV(pv)
	}
}

// refreshNode does the same for a node's hostname label.
func (pl *LocalVolumeBinding) refreshNode(name string) {
	n, err := pl.nodeLister.Get(name)
	if apierrors.IsNotFound(err) {
		pl.index.DeleteNode(name)
		return
	}
	if err == nil {
		pl.index.SetNode(n)
	}
}
