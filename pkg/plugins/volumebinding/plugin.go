// Package volumebinding is Berth's LocalVolumeBinding scheduler plugin, a
// replacement for the in-tree VolumeBinding plugin in a profile. It handles
// every PVC a pod can use (bound, pre-bound, WaitForFirstConsumer, generic
// ephemeral, dynamically provisioned) and is built for local volumes:
//
//   - Filter reads a node's volumes from an index kept by informer events
//     (pvindex) instead of scanning every PV of a class for every node;
//   - the claims of a pod are matched to a node's volumes exactly (matching),
//     so a feasible assignment is found whenever one exists and the one that
//     wastes the least capacity is chosen;
//   - PreBind completes the binds itself in the scheduler's parallel binding
//     goroutines (bindMode Direct), or waits for the PV controller woken by
//     informer events rather than polling (bindMode PVController), and
//     reverts its API writes when binding fails, so the volume is Available
//     again and the pod can go elsewhere (kubernetes#121436).
package volumebinding

import (
	"context"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	csitrans "k8s.io/csi-translation-lib"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/berth-dev/berth/pkg/apis/config"
	"github.com/berth-dev/berth/pkg/apis/config/validation"
	"github.com/berth-dev/berth/pkg/plugins/volumebinding/pvindex"
)

// Name is the plugin's name in profiles and pluginConfig.
const Name = "LocalVolumeBinding"

// LocalVolumeBinding matches a pod's claims to volumes and binds them.
type LocalVolumeBinding struct {
	handle      fwk.Handle
	bindTimeout time.Duration
	// directBind: PreBind completes static binds itself (bindMode Direct).
	directBind bool

	index       *pvindex.Index
	podLister   corelisters.PodLister
	pvcLister   corelisters.PersistentVolumeClaimLister
	nodeLister  corelisters.NodeLister
	pvLister    corelisters.PersistentVolumeLister
	classLister storagelisters.StorageClassLister
	csiNodes    storagelisters.CSINodeLister
	csiDrivers  storagelisters.CSIDriverLister
	capacities  storagelisters.CSIStorageCapacityLister
	translator  csitrans.CSITranslator
	waiters     *notifier
	synced      []cache.ResourceEventHandlerRegistration
	invalidMu   sync.Mutex
	invalidSeen map[string]string // PV name → resourceVersion already reported
}

var (
	_ fwk.PreFilterPlugin   = &LocalVolumeBinding{}
	_ fwk.FilterPlugin      = &LocalVolumeBinding{}
	_ fwk.ReservePlugin     = &LocalVolumeBinding{}
	_ fwk.PreBindPlugin     = &LocalVolumeBinding{}
	_ fwk.EnqueueExtensions = &LocalVolumeBinding{}
	_ fwk.SignPlugin        = &LocalVolumeBinding{}
)

// Name returns the plugin name.
func (pl *LocalVolumeBinding) Name() string { return Name }

// New builds the plugin from its (defaulted) args. Invalid args fail the
// scheduler's start-up with a message naming the field.
func New(ctx context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	args, ok := obj.(*config.LocalVolumeBindingArgs)
	if !ok {
		return nil, fmt.Errorf("%s: want args of type LocalVolumeBindingArgs, got %T", Name, obj)
	}
	if err := validation.ValidateLocalVolumeBindingArgs(nil, args); err != nil {
		return nil, fmt.Errorf("%s: invalid args: %w", Name, err)
	}
	registerMetrics()
	f := h.SharedInformerFactory()
	pl := &LocalVolumeBinding{
		handle:      h,
		bindTimeout: time.Duration(args.BindTimeoutSeconds) * time.Second,
		directBind:  args.BindMode == config.BindModeDirect,
		index:       pvindex.New(),
		podLister:   f.Core().V1().Pods().Lister(),
		pvcLister:   f.Core().V1().PersistentVolumeClaims().Lister(),
		nodeLister:  f.Core().V1().Nodes().Lister(),
		pvLister:    f.Core().V1().PersistentVolumes().Lister(),
		classLister: f.Storage().V1().StorageClasses().Lister(),
		csiNodes:    f.Storage().V1().CSINodes().Lister(),
		csiDrivers:  f.Storage().V1().CSIDrivers().Lister(),
		capacities:  f.Storage().V1().CSIStorageCapacities().Lister(),
		translator:  csitrans.New(),
		waiters:     newNotifier(),
		invalidSeen: map[string]string{},
	}
	if err := pl.addEventHandlers(klog.FromContext(ctx), f); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	return pl, nil
}

// hasSynced reports whether the index has seen every PV and node the
// informers listed at start-up.
func (pl *LocalVolumeBinding) hasSynced() bool {
	for _, r := range pl.synced {
		if !r.HasSynced() {
			return false
		}
	}
	return true
}

// SignPod lets the scheduler batch pods with identical scheduling needs.
// A pod with claims is never batched: its feasible nodes depend on which
// volumes earlier pods just reserved, which a cached result cannot know.
func (pl *LocalVolumeBinding) SignPod(ctx context.Context, pod *v1.Pod) ([]fwk.SignFragment, *fwk.Status) {
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].PersistentVolumeClaim != nil || pod.Spec.Volumes[i].Ephemeral != nil {
			return nil, fwk.NewStatus(fwk.Unschedulable, "pods with PersistentVolumeClaims are not batched")
		}
	}
	return []fwk.SignFragment{{Key: fwk.VolumesSignerName, Value: fwk.VolumesSigner(pod)}}, nil
}
