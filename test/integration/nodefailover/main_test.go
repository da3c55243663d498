// Package nodefailover runs the node failover controller against a real
// control plane (test/integration/framework): kube-apiserver on embedded
// etcd, the real PV, PVC/PV protection, StatefulSet, garbage collector, node
// lifecycle and pod GC controllers, simulated kubelets and berth-scheduler.
// A node "dies" when its simulated kubelet stops: the node lifecycle
// controller marks it Unknown after its grace period (4s in the harness),
// and the failover controller takes it from there.
package nodefailover

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/restmapper"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/berth-dev/berth/pkg/nodefailover"
	"github.com/berth-dev/berth/pkg/nodefailover/policy"
	"github.com/berth-dev/berth/test/integration/framework"
)

func TestMain(m *testing.M) {
	framework.Main(m, framework.MainOptions{})
}

// threshold is the --node-dead-threshold of most scenarios.
const threshold = 2 * time.Second

// controllers are the kube-controller-manager controllers every scenario runs.
var controllers = []framework.Controller{
	framework.PersistentVolumeBinder, framework.PVCProtection, framework.PVProtection,
	framework.StatefulSet, framework.GarbageCollector, framework.NodeLifecycle, framework.PodGC,
}

// scenario is one test's cluster: nodes with two local PVs each, a local
// StorageClass and a StatefulSet "db" spread over distinct nodes.
type scenario struct {
	e     *framework.Env
	nodes []*v1.Node
	class string
	set   string
	// deletes counts successful DELETEs of claims by the failover
	// controller(s), by claim name.
	deletes *deleteCounter
}

type scenarioOptions struct {
	nodes            int
	replicas         int32
	classAnnotations map[string]string
	setAnnotations   map[string]string
}

func optedIn(extra ...string) map[string]string {
	ann := map[string]string{policy.AnnFailover: policy.FailoverEnabled}
	for i := 0; i+1 < len(extra); i += 2 {
		ann[extra[i]] = extra[i+1]
	}
	return ann
}

func newScenario(t *testing.T, o scenarioOptions) *scenario {
	if o.nodes == 0 {
		o.nodes = 5
	}
	if o.replicas == 0 {
		o.replicas = 3
	}
	e := framework.NewEnv(t)
	e.Timeout = 60 * time.Second
	e.StartControllers(controllers...)
	e.StartScheduler()
	s := &scenario{e: e, set: "db", deletes: &deleteCounter{counts: map[string]int{}}}
	for i := range o.nodes {
		// The hostname label differs from the node name, as on clouds.
		n := e.CreateNode(framework.NodeOptions{Name: e.Name(fmt.Sprintf("node%d", i)), Hostname: e.Name(fmt.Sprintf("host%d", i))})
		s.nodes = append(s.nodes, n)
	}
	s.class = e.CreateStorageClass(framework.StorageClassOptions{Name: e.Name("local"), Annotations: o.classAnnotations}).Name
	for _, n := range s.nodes {
		for j := range 2 {
			e.CreateLocalPV(framework.LocalPVOptions{
				Name: fmt.Sprintf("%s-pv%d", n.Name, j), Hostname: framework.Hostname(n), StorageClass: s.class,
				Capacity: "10Gi", ReclaimPolicy: v1.PersistentVolumeReclaimDelete,
			})
		}
	}
	e.CreateStatefulSet(framework.StatefulSetOptions{
		Name: s.set, Replicas: o.replicas, PodManagementPolicy: appsv1.ParallelPodManagement,
		VolumeClaimTemplates: []framework.PVCOptions{{Name: "data", StorageClass: s.class, Request: "5Gi"}},
		Affinity: &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": s.set}},
				TopologyKey:   v1.LabelHostname,
			}},
		}},
		Mutate: func(set *appsv1.StatefulSet) { set.Annotations = o.setAnnotations },
	})
	e.WaitForStatefulSetReady(s.set)
	return s
}

func (s *scenario) podName(ordinal int) string { return framework.StatefulSetPodName(s.set, ordinal) }
func (s *scenario) claimName(ordinal int) string {
	return framework.StatefulSetClaimName("data", s.set, ordinal)
}

func (s *scenario) pod(ordinal int) *v1.Pod {
	p, err := s.e.Client.CoreV1().Pods(s.e.Namespace).Get(s.e.Ctx, s.podName(ordinal), metav1.GetOptions{})
	require.NoError(s.e.T, err)
	return p
}

func (s *scenario) claim(ordinal int) *v1.PersistentVolumeClaim {
	c, err := s.e.Client.CoreV1().PersistentVolumeClaims(s.e.Namespace).Get(s.e.Ctx, s.claimName(ordinal), metav1.GetOptions{})
	require.NoError(s.e.T, err)
	return c
}

// victim is replica 1: its pod, claim and node.
type victim struct {
	ordinal  int
	podUID   types.UID
	claimUID types.UID
	pv       string
	node     string
	// fromNode is the node name the failover records (default node).
	fromNode string
}

func (s *scenario) victim(ordinal int) victim {
	p, c := s.pod(ordinal), s.claim(ordinal)
	require.Equal(s.e.T, v1.ClaimBound, c.Status.Phase)
	return victim{ordinal: ordinal, podUID: p.UID, claimUID: c.UID, pv: c.Spec.VolumeName, node: p.Spec.NodeName}
}

// killNode stops the node's kubelet and returns when the node lifecycle
// controller has marked it NotReady, with the time the test saw that.
func (s *scenario) killNode(name string) time.Time {
	s.e.StopNode(name)
	s.e.WaitForNodeCondition(name, v1.NodeReady, v1.ConditionUnknown)
	return time.Now()
}

// failover is a running failover controller.
type failover struct {
	// cancel stops the controller without waiting (a crash); stop cancels
	// and waits for it.
	cancel, stop func()
}

// startFailover starts the failover controller with DefaultConfig, a 2s
// threshold and a short recheck interval, edited by mod; it stops when the
// test ends.
func (s *scenario) startFailover(mod func(*nodefailover.Config)) failover {
	t := s.e.T
	cfg := nodefailover.DefaultConfig()
	cfg.NodeDeadThreshold = threshold
	cfg.RecheckInterval = 500 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	restCfg := s.e.CP.RESTConfig("berth-nodefailover")
	restCfg.Wrap(s.deletes.wrap)
	client := kubernetes.NewForConfigOrDie(restCfg)
	metadataClient, err := metadata.NewForConfig(restCfg)
	require.NoError(t, err)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(client.Discovery()))
	factory := informers.NewSharedInformerFactory(client, 0)
	ctrl, err := nodefailover.New(client, metadataClient, mapper, factory, cfg)
	require.NoError(t, err)
	// The controller logs into the test's log (shown with -v or on failure).
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.Verbosity(2), ktesting.BufferLogs(false)))
	ctx, cancel := context.WithCancel(klog.NewContext(context.Background(), logger.WithName("nodefailover")))
	factory.Start(ctx.Done())
	var wg sync.WaitGroup
	wg.Go(func() { ctrl.Run(ctx) })
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			factory.Shutdown()
		})
	}
	t.Cleanup(stop)
	return failover{cancel: cancel, stop: stop}
}

// deleteCounter counts successful DELETE requests on claims.
type deleteCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func (d *deleteCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		if err == nil && req.Method == http.MethodDelete && resp.StatusCode < 300 &&
			strings.Contains(req.URL.Path, "/persistentvolumeclaims/") {
			d.mu.Lock()
			d.counts[req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:]]++
			d.mu.Unlock()
		}
		return resp, err
	})
}

func (d *deleteCounter) get(claim string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.counts[claim]
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// waitForReplacement waits until replica v.ordinal runs again as a new pod
// on another node, and returns it with the time the test saw it Running.
func (s *scenario) waitForReplacement(v victim) (*v1.Pod, time.Time) {
	p := s.e.WaitForPod(s.podName(v.ordinal), "replaced and running", func(p *v1.Pod) bool {
		c := framework.PodCondition(p, v1.PodReady)
		return p.UID != v.podUID && p.Status.Phase == v1.PodRunning && c != nil && c.Status == v1.ConditionTrue
	})
	seen := time.Now()
	assert.NotEqual(s.e.T, v.node, p.Spec.NodeName, "replacement on another node")
	return p, seen
}

// checkFailedOver asserts the end state of a completed failover of v.
func (s *scenario) checkFailedOver(v victim) {
	t, e := s.e.T, s.e
	claim := e.WaitForPVC(s.claimName(v.ordinal), "recreated, bound and handed off", func(c *v1.PersistentVolumeClaim) bool {
		return c.UID != v.claimUID && c.Status.Phase == v1.ClaimBound && c.Annotations[policy.AnnFailedOverFromPV] != ""
	})
	assert.NotEqual(t, v.pv, claim.Spec.VolumeName, "the new claim is bound to a new PV")
	fromNode := v.node
	if v.fromNode != "" {
		fromNode = v.fromNode
	}
	assert.Equal(t, fromNode, claim.Annotations[policy.AnnFailedOverFromNode])
	assert.Equal(t, v.pv, claim.Annotations[policy.AnnFailedOverFromPV])
	_, err := time.Parse(time.RFC3339, claim.Annotations[policy.AnnFailedOverAt])
	assert.NoError(t, err, "%s is RFC3339", policy.AnnFailedOverAt)

	newPV, err := e.Client.CoreV1().PersistentVolumes().Get(e.Ctx, claim.Spec.VolumeName, metav1.GetOptions{})
	require.NoError(t, err)
	newNode := s.pod(v.ordinal).Spec.NodeName
	var newHost string
	for _, n := range s.nodes {
		if n.Name == newNode {
			newHost = framework.Hostname(n)
		}
	}
	assert.True(t, policy.VolumePinnedToNode(newPV, newNode, newHost), "new PV %s lives on the new node %s", newPV.Name, newNode)

	old := e.WaitForPV(v.pv, "failover completed", func(pv *v1.PersistentVolume) bool {
		return pv.Annotations[policy.AnnFailoverPhase] == policy.PVPhaseCompleted
	})
	assert.Equal(t, v1.PersistentVolumeReclaimRetain, old.Spec.PersistentVolumeReclaimPolicy, "old PV retained")
	assert.Equal(t, v1.VolumeReleased, old.Status.Phase, "old PV released, data kept")
	assert.Equal(t, fromNode, old.Annotations[policy.AnnFailedOverFromNode])
	assert.Equal(t, fmt.Sprintf("%s/%s/%s", e.Namespace, s.claimName(v.ordinal), v.claimUID), old.Annotations[policy.AnnFailedOverClaim])
	assert.Equal(t, claim.Annotations[policy.AnnFailedOverAt], old.Annotations[policy.AnnFailedOverAt])
	assert.Equal(t, string(claim.UID), old.Annotations[policy.AnnFailedOverToClaimUID])
	assert.Equal(t, 1, s.deletes.get(s.claimName(v.ordinal)), "the old claim was deleted exactly once")

	// Events for the operator: on the StatefulSet and on the new claim.
	e.WaitForEvent(framework.EventQuery{Namespace: e.Namespace, Kind: "StatefulSet", Name: s.set, Reason: policy.ReasonStarted})
	e.WaitForEvent(framework.EventQuery{Namespace: e.Namespace, Kind: "StatefulSet", Name: s.set, Reason: policy.ReasonCompleted})
	e.WaitForEvent(framework.EventQuery{Namespace: e.Namespace, Kind: "PersistentVolumeClaim", Name: s.claimName(v.ordinal), Reason: policy.ReasonHandOff})
}

// checkUntouched asserts for a while that replica v keeps its pod and claim.
func (s *scenario) checkUntouched(v victim, d time.Duration) {
	s.e.Consistently(fmt.Sprintf("replica %d untouched", v.ordinal), d, func(ctx context.Context) (bool, error) {
		p, err := s.e.Client.CoreV1().Pods(s.e.Namespace).Get(ctx, s.podName(v.ordinal), metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c, err := s.e.Client.CoreV1().PersistentVolumeClaims(s.e.Namespace).Get(ctx, s.claimName(v.ordinal), metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return p.UID == v.podUID && p.DeletionTimestamp == nil && c.UID == v.claimUID && c.DeletionTimestamp == nil, nil
	})
	assert.Zero(s.e.T, s.deletes.get(s.claimName(v.ordinal)))
}

// waitSkipped waits for a BerthFailoverSkipped event on the StatefulSet
// whose message contains substr.
func (s *scenario) waitSkipped(substr string) {
	s.e.Eventually("BerthFailoverSkipped event mentioning "+substr, func(ctx context.Context) (bool, error) {
		for _, ev := range s.e.Events(framework.EventQuery{Namespace: s.e.Namespace, Kind: "StatefulSet", Name: s.set, Reason: policy.ReasonSkipped}) {
			if strings.Contains(ev.Message, substr) {
				return true, nil
			}
		}
		return false, nil
	})
}

func (s *scenario) noEventsFromController() {
	for _, reason := range []string{policy.ReasonStarted, policy.ReasonCompleted, policy.ReasonSkipped, policy.ReasonHandOff, policy.ReasonDryRun, policy.ReasonAborted} {
		assert.Empty(s.e.T, s.e.Events(framework.EventQuery{Namespace: s.e.Namespace, Reason: reason}), "no %s events", reason)
	}
}
