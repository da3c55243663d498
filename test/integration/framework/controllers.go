package framework

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/restmapper"
	"k8s.io/controller-manager/pkg/informerfactory"
	"k8s.io/klog/v2"

	"k8s.io/kubernetes/pkg/controller/garbagecollector"
	"k8s.io/kubernetes/pkg/controller/nodelifecycle"
	"k8s.io/kubernetes/pkg/controller/podgc"
	"k8s.io/kubernetes/pkg/controller/statefulset"
	"k8s.io/kubernetes/pkg/controller/tainteviction"
	"k8s.io/kubernetes/pkg/controller/volume/persistentvolume"
	"k8s.io/kubernetes/pkg/controller/volume/pvcprotection"
	"k8s.io/kubernetes/pkg/controller/volume/pvprotection"

	"github.com/berth-dev/berth/test/integration/framework/simkubelet"
)

// Controller names a kube-controller-manager controller that the harness can
// run in-process, constructed as kube-controller-manager constructs it (see
// k8s.io/kubernetes/cmd/kube-controller-manager/app), with test-friendly
// periods from ControllerConfig.
type Controller string

const (
	// PersistentVolumeBinder is the PV controller
	// (pkg/controller/volume/persistentvolume): binds claims to volumes
	// (Immediate mode at once, WaitForFirstConsumer once the scheduler set
	// the selected-node annotation or pre-bound the PV), and hands claims of
	// out-of-tree provisioners to them (see FakeProvisioner). No in-tree
	// volume plugins are loaded.
	PersistentVolumeBinder Controller = "persistentvolume-binder"
	// PVCProtection removes the kubernetes.io/pvc-protection finalizer from
	// deleted claims that no pod uses.
	PVCProtection Controller = "persistentvolumeclaim-protection"
	// PVProtection removes the kubernetes.io/pv-protection finalizer from
	// deleted volumes that are not bound.
	PVProtection Controller = "persistentvolume-protection"
	// StatefulSet is the StatefulSet controller (pods and claims from
	// volumeClaimTemplates).
	StatefulSet Controller = "statefulset"
	// GarbageCollector deletes dependents of deleted owners (e.g. pods and,
	// with a retention policy, claims of a deleted StatefulSet; Leases of
	// deleted nodes).
	GarbageCollector Controller = "garbage-collector"
	// NodeLifecycle marks nodes whose Lease is not renewed within
	// ControllerConfig.NodeMonitorGracePeriod as Ready=Unknown, taints them
	// node.kubernetes.io/unreachable (NoSchedule and NoExecute) and marks
	// their pods not ready. Starting it also registers a sentinel node, see
	// ControllerConfig.NoSentinelNode.
	NodeLifecycle Controller = "node-lifecycle"
	// TaintEviction evicts pods from nodes with NoExecute taints they do not
	// tolerate (pods get 300s tolerations for not-ready/unreachable from the
	// DefaultTolerationSeconds admission plugin unless they set their own).
	TaintEviction Controller = "taint-eviction"
	// PodGC deletes pods bound to nodes that no longer exist, terminating
	// pods on nodes tainted node.kubernetes.io/out-of-service, and
	// terminated pods beyond the threshold.
	PodGC Controller = "pod-garbage-collector"
)

// AllControllers lists every controller the harness can run.
var AllControllers = []Controller{
	PersistentVolumeBinder, PVCProtection, PVProtection, StatefulSet,
	GarbageCollector, NodeLifecycle, TaintEviction, PodGC,
}

// ControllerConfig holds the controllers' periods and thresholds.
// DefaultControllerConfig returns values tuned for tests.
type ControllerConfig struct {
	// PVSyncPeriod is the PV controller's full resync period (kcm: 15s).
	PVSyncPeriod time.Duration
	// NodeMonitorPeriod is how often node health is checked (kcm: 5s).
	NodeMonitorPeriod time.Duration
	// NodeMonitorGracePeriod is how long a node may go without renewing
	// its Lease before it is marked Unknown (kcm: 50s).
	NodeMonitorGracePeriod time.Duration
	// NodeStartupGracePeriod applies to nodes that never posted status
	// (kcm: 1m).
	NodeStartupGracePeriod time.Duration
	// NodeEvictionRate and SecondaryNodeEvictionRate rate-limit NoExecute
	// tainting per zone, in nodes per second (kcm: 0.1 and 0.01).
	NodeEvictionRate          float32
	SecondaryNodeEvictionRate float32
	// LargeClusterSizeThreshold (kcm: 50): zones at most this big stop
	// tainting entirely in partial disruption. 0 keeps tainting on.
	LargeClusterSizeThreshold int32
	// UnhealthyZoneThreshold (kcm: 0.55): share of NotReady nodes (at least
	// 3) that puts a zone in partial disruption.
	UnhealthyZoneThreshold float32
	// NoSentinelNode: by default starting NodeLifecycle also creates an
	// always-Ready, unschedulable node heartbeated by its own simulated
	// kubelet. Without it, a test whose every node stops heartbeating would
	// put the controller in "master disruption mode" (all nodes NotReady),
	// where it removes the NoExecute taints instead of adding them.
	NoSentinelNode bool
	// PodGCCheckPeriod (kcm: 20s) and PodGCQuarantineTime (kcm: 40s, how
	// long a pod bound to a missing node waits before deletion).
	PodGCCheckPeriod    time.Duration
	PodGCQuarantineTime time.Duration
	// TerminatedPodGCThreshold (kcm: 12500).
	TerminatedPodGCThreshold int
	// GCSyncPeriod is the garbage collector's discovery resync (kcm: 30s).
	GCSyncPeriod time.Duration
	// StatefulSetWorkers (kcm: 5).
	StatefulSetWorkers int
}

// DefaultControllerConfig returns periods short enough for tests: a node
// that stops heartbeating is Unknown and tainted within about 5 seconds.
func DefaultControllerConfig() ControllerConfig {
	return ControllerConfig{
		PVSyncPeriod:              time.Second,
		NodeMonitorPeriod:         500 * time.Millisecond,
		NodeMonitorGracePeriod:    4 * time.Second,
		NodeStartupGracePeriod:    10 * time.Second,
		NodeEvictionRate:          100,
		SecondaryNodeEvictionRate: 100,
		LargeClusterSizeThreshold: 0,
		UnhealthyZoneThreshold:    0.55,
		PodGCCheckPeriod:          time.Second,
		PodGCQuarantineTime:       2 * time.Second,
		TerminatedPodGCThreshold:  12500,
		GCSyncPeriod:              5 * time.Second,
		StatefulSetWorkers:        5,
	}
}

// Controllers is a running set of controllers sharing one informer factory,
// as in kube-controller-manager.
type Controllers struct {
	names    []Controller
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
	// sentinel is the simulated kubelet of the sentinel node, if any.
	sentinel     *simkubelet.Kubelet
	sentinelName string
	client       kubernetes.Interface
}

// StartControllers starts the named controllers with DefaultControllerConfig
// and stops them when the test ends. Do not run two instances of the same
// controller against one control plane at the same time (no leader election
// here): tests that start controllers must not run in parallel with each
// other, or start them once in TestMain (MainOptions.Controllers).
func (cp *ControlPlane) StartControllers(t testing.TB, names ...Controller) *Controllers {
	t.Helper()
	return cp.StartControllersWithConfig(t, DefaultControllerConfig(), names...)
}

// StartControllersWithConfig is StartControllers with explicit settings.
func (cp *ControlPlane) StartControllersWithConfig(t testing.TB, cfg ControllerConfig, names ...Controller) *Controllers {
	t.Helper()
	c, err := cp.RunControllers(context.Background(), cfg, names...)
	if err != nil {
		t.Fatalf("starting controllers %v: %v", names, err)
	}
	t.Cleanup(c.Stop)
	return c
}

// RunControllers starts the named controllers and returns once their caches
// have synced. Call Stop to stop them (cancelling ctx stops them too, but
// only Stop waits).
func (cp *ControlPlane) RunControllers(ctx context.Context, cfg ControllerConfig, names ...Controller) (_ *Controllers, err error) {
	ctx, cancel := context.WithCancel(ctx)
	c := &Controllers{names: slices.Clone(names), cancel: cancel, client: cp.NewClient("berth-integration-controllers")}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	logger := klog.FromContext(ctx)
	factory := informers.NewSharedInformerFactory(cp.NewClient("shared-informers"), 0)
	var metadataFactory metadatainformer.SharedInformerFactory
	informersStarted := make(chan struct{})
	var runs []func(context.Context)

	for _, name := range names {
		switch name {
		case PersistentVolumeBinder:
			ctrl, err := persistentvolume.NewController(ctx, persistentvolume.ControllerParameters{
				KubeClient:                cp.NewClient("persistent-volume-binder"),
				SyncPeriod:                cfg.PVSyncPeriod,
				VolumeInformer:            factory.Core().V1().PersistentVolumes(),
				ClaimInformer:             factory.Core().V1().PersistentVolumeClaims(),
				ClassInformer:             factory.Storage().V1().StorageClasses(),
				PodInformer:               factory.Core().V1().Pods(),
				NodeInformer:              factory.Core().V1().Nodes(),
				EnableDynamicProvisioning: true,
			})
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			runs = append(runs, ctrl.Run)

		case PVCProtection:
			ctrl, err := pvcprotection.NewPVCProtectionController(logger,
				factory.Core().V1().PersistentVolumeClaims(), factory.Core().V1().Pods(),
				cp.NewClient("pvc-protection-controller"))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			runs = append(runs, func(ctx context.Context) { ctrl.Run(ctx, 1) })

		case PVProtection:
			ctrl, err := pvprotection.NewPVProtectionController(logger,
				factory.Core().V1().PersistentVolumes(), cp.NewClient("pv-protection-controller"))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			runs = append(runs, func(ctx context.Context) { ctrl.Run(ctx, 1) })

		case StatefulSet:
			ctrl := statefulset.NewStatefulSetController(ctx,
				factory.Core().V1().Pods(), factory.Apps().V1().StatefulSets(),
				factory.Core().V1().PersistentVolumeClaims(), factory.Apps().V1().ControllerRevisions(),
				cp.NewClient("statefulset-controller"))
			workers := max(cfg.StatefulSetWorkers, 1)
			runs = append(runs, func(ctx context.Context) { ctrl.Run(ctx, workers) })

		case GarbageCollector:
			gcConfig := cp.RESTConfig("generic-garbage-collector")
			metadataClient, err := metadata.NewForConfig(gcConfig)
			if err != nil {
				return nil, err
			}
			if metadataFactory == nil {
				metadataFactory = metadatainformer.NewSharedInformerFactory(metadataClient, 0)
			}
			gcClient := kubernetes.NewForConfigOrDie(gcConfig)
			mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(gcClient.Discovery()))
			gc, err := garbagecollector.NewGarbageCollector(ctx, gcClient, metadataClient, mapper,
				garbagecollector.DefaultIgnoredResources(),
				informerfactory.NewInformerFactory(factory, metadataFactory), informersStarted)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			// A discovery client of its own, not shared with the mapper
			// (see GarbageCollector.Sync).
			discoveryClient := cp.NewClient("generic-garbage-collector-discovery").Discovery()
			period := cfg.GCSyncPeriod
			runs = append(runs,
				func(ctx context.Context) { gc.Run(ctx, 5, period) },
				func(ctx context.Context) { gc.Sync(ctx, discoveryClient, period) })

		case NodeLifecycle:
			ctrl, err := nodelifecycle.NewNodeLifecycleController(ctx,
				factory.Coordination().V1().Leases(), factory.Core().V1().Pods(),
				factory.Core().V1().Nodes(), factory.Apps().V1().DaemonSets(),
				cp.NewClient("node-controller"),
				cfg.NodeMonitorPeriod, cfg.NodeStartupGracePeriod, cfg.NodeMonitorGracePeriod,
				cfg.NodeEvictionRate, cfg.SecondaryNodeEvictionRate,
				cfg.LargeClusterSizeThreshold, cfg.UnhealthyZoneThreshold)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			runs = append(runs, ctrl.Run)
			if !cfg.NoSentinelNode {
				if err := c.startSentinel(ctx, cp); err != nil {
					return nil, err
				}
			}

		case TaintEviction:
			ctrl, err := tainteviction.New(ctx, cp.NewClient("node-controller"),
				factory.Core().V1().Pods(), factory.Core().V1().Nodes(), "taint-eviction-controller")
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			runs = append(runs, ctrl.Run)

		case PodGC:
			ctrl := podgc.NewPodGCInternal(ctx, cp.NewClient("pod-garbage-collector"),
				factory.Core().V1().Pods(), factory.Core().V1().Nodes(),
				cfg.TerminatedPodGCThreshold, cfg.PodGCCheckPeriod, cfg.PodGCQuarantineTime)
			runs = append(runs, ctrl.Run)

		default:
			return nil, fmt.Errorf("unknown controller %q", name)
		}
	}

	// As kube-controller-manager: construct everything, then start the
	// informers, then run.
	factory.Start(ctx.Done())
	if metadataFactory != nil {
		metadataFactory.Start(ctx.Done())
	}
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return nil, fmt.Errorf("informer for %v did not sync", typ)
		}
	}
	close(informersStarted)
	for _, run := range runs {
		c.wg.Go(func() { run(ctx) })
	}
	c.wg.Go(func() {
		<-ctx.Done()
		factory.Shutdown()
		if metadataFactory != nil {
			metadataFactory.Shutdown()
		}
	})
	return c, nil
}

// Names returns the controllers in the set.
func (c *Controllers) Names() []Controller { return slices.Clone(c.names) }

// Stop stops the controllers and waits for them; it also removes the
// sentinel node. Safe to call more than once.
func (c *Controllers) Stop() {
	c.stopOnce.Do(func() {
		c.cancel()
		c.wg.Wait()
		if c.sentinel != nil {
			c.sentinel.Shutdown()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := c.client.CoreV1().Nodes().Delete(ctx, c.sentinelName, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				klog.Background().Error(err, "deleting the sentinel node", "node", c.sentinelName)
			}
			_ = c.client.CoordinationV1().Leases(v1.NamespaceNodeLease).Delete(ctx, c.sentinelName, metav1.DeleteOptions{})
		}
	})
}

var sentinelCounter atomic.Int32

// SentinelNodeLabel marks the sentinel node created with NodeLifecycle.
const SentinelNodeLabel = "berth.dev/integration-sentinel"

func (c *Controllers) startSentinel(ctx context.Context, cp *ControlPlane) error {
	c.sentinelName = fmt.Sprintf("zz-sentinel-%d", sentinelCounter.Add(1))
	node := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: c.sentinelName,
			Labels: map[string]string{
				v1.LabelHostname:  c.sentinelName,
				SentinelNodeLabel: "true",
			},
		},
		Spec: v1.NodeSpec{
			Unschedulable: true,
			Taints:        []v1.Taint{{Key: SentinelNodeLabel, Effect: v1.TaintEffectNoSchedule}},
		},
		Status: v1.NodeStatus{
			Capacity:    v1.ResourceList{v1.ResourcePods: resource.MustParse("0")},
			Allocatable: v1.ResourceList{v1.ResourcePods: resource.MustParse("0")},
		},
	}
	if _, err := c.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the sentinel node: %w", err)
	}
	c.sentinel = simkubelet.New(cp.NewClient("simkubelet-sentinel"), simkubelet.Options{})
	if err := c.sentinel.Start(ctx); err != nil {
		return err
	}
	return c.sentinel.Register(ctx, c.sentinelName)
}
