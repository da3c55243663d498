package framework

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/berth-dev/berth/test/integration/framework/simkubelet"
)

// EnvLabel is set on every cluster-scoped object an Env creates (nodes, PVs,
// StorageClasses, CSIDrivers, provisioned PVs) with the Env's ID as value;
// the Env's cleanup deletes everything carrying its ID. Put it on objects
// you create yourself through Client to have them cleaned up too (see
// Env.Labels).
const EnvLabel = "berth.dev/integration-env"

// DefaultTimeout bounds the Wait* helpers unless Env.Timeout is changed.
const DefaultTimeout = 30 * time.Second

// Env is one test's slice of a control plane: its own namespace, a unique
// prefix for cluster-scoped names, a simulated kubelet for its nodes, and a
// cleanup that removes all of it when the test ends. The helpers (Create*,
// Wait*) fail the test on error.
type Env struct {
	// T is the test the Env belongs to.
	T testing.TB
	// Ctx is cancelled when the test ends (before cleanups run).
	Ctx context.Context
	// CP is the control plane.
	CP *ControlPlane
	// Client is an admin clientset.
	Client kubernetes.Interface
	// Namespace is the test's namespace (created by NewEnv).
	Namespace string
	// ID is unique per Env in this process; Name builds names from it.
	ID string
	// Kubelet simulates the kubelets of the nodes made by CreateNode.
	Kubelet *simkubelet.Kubelet
	// Timeout bounds each Wait* helper; DefaultTimeout unless changed.
	Timeout time.Duration
}

var envCounter atomic.Int64

// NewEnv sets up an Env on the shared control plane (see Main).
func NewEnv(t testing.TB) *Env {
	t.Helper()
	return NewEnvOn(t, Shared(t))
}

// NewEnvOn sets up an Env on the given control plane: it creates the
// namespace (and waits for its default ServiceAccount, which pod admission
// needs), starts the simulated kubelet, and registers the cleanup.
func NewEnvOn(t testing.TB, cp *ControlPlane) *Env {
	t.Helper()
	id := fmt.Sprintf("%s-%d", shortName(t.Name()), envCounter.Add(1))
	e := &Env{
		T:         t,
		Ctx:       t.Context(),
		CP:        cp,
		Client:    cp.NewClient("berth-integration-test"),
		Namespace: id,
		ID:        id,
		Timeout:   DefaultTimeout,
	}
	_, err := e.Client.CoreV1().Namespaces().Create(e.Ctx, &v1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: e.Namespace, Labels: e.Labels()},
	}, metav1.CreateOptions{})
	require.NoError(t, err, "creating namespace %s", e.Namespace)

	// From here on the cleanup must run even if setup fails.
	kubeletCtx, stopKubelet := context.WithCancel(context.Background())
	e.Kubelet = simkubelet.New(cp.NewClient("simkubelet"), simkubelet.Options{})
	t.Cleanup(func() {
		e.Kubelet.Shutdown()
		stopKubelet()
		e.cleanup()
	})
	require.NoError(t, e.Kubelet.Start(kubeletCtx), "starting the simulated kubelet")
	e.Eventually("default ServiceAccount in "+e.Namespace, func(ctx context.Context) (bool, error) {
		_, err := e.Client.CoreV1().ServiceAccounts(e.Namespace).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, ignoreNotFound(err)
	})
	return e
}

// For returns a copy of the Env bound to t, typically a subtest of the
// Env's test: its helpers then fail t (calling FailNow on the parent test
// from a subtest is not allowed) and schedulers or controllers started
// through it stop when t ends. Objects are still cleaned up by the original
// Env when its test ends.
func (e *Env) For(t testing.TB) *Env {
	c := *e
	c.T = t
	c.Ctx = t.Context()
	return &c
}

// Run runs f as subtest name of the Env's test, with the Env bound to the
// subtest (see For).
func (e *Env) Run(name string, f func(e *Env)) bool {
	t, ok := e.T.(*testing.T)
	if !ok {
		e.T.Fatalf("Env.Run needs a *testing.T, have %T", e.T)
	}
	return t.Run(name, func(t *testing.T) { f(e.For(t)) })
}

// Name returns "<ID>-<base>": a name no other Env in this process uses, for
// cluster-scoped objects (nodes, PVs, StorageClasses, provisioners).
func (e *Env) Name(base string) string {
	return e.ID + "-" + base
}

// Labels returns the EnvLabel label set for objects of this Env.
func (e *Env) Labels() map[string]string {
	return map[string]string{EnvLabel: e.ID}
}

// StartScheduler starts a scheduler for this test (see
// ControlPlane.StartScheduler).
func (e *Env) StartScheduler(opts ...SchedulerOption) *Scheduler {
	e.T.Helper()
	return e.CP.StartScheduler(e.T, opts...)
}

// StartControllers starts controllers for this test with
// DefaultControllerConfig (see ControlPlane.StartControllers).
func (e *Env) StartControllers(names ...Controller) *Controllers {
	e.T.Helper()
	return e.CP.StartControllers(e.T, names...)
}

// cleanup deletes the Env's objects. Pods are deleted with grace period 0
// (their kubelets may be stopped) and finalizers are stripped from claims
// and volumes (the protection controllers may not run), so the next test
// starts from a clean cluster. Failures are logged, not fatal.
func (e *Env) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	logErr := func(what string, err error) {
		if err != nil && !apierrors.IsNotFound(err) {
			e.T.Logf("cleanup: %s: %v", what, err)
		}
	}
	core := e.Client.CoreV1()
	byEnv := metav1.ListOptions{LabelSelector: EnvLabel + "=" + e.ID}
	background := metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}

	logErr("deleting statefulsets", e.Client.AppsV1().StatefulSets(e.Namespace).DeleteCollection(ctx, background, metav1.ListOptions{}))
	if pods, err := core.Pods(e.Namespace).List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range pods.Items {
			logErr("deleting pod "+p.Name, core.Pods(e.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
		}
	}
	if pvcs, err := core.PersistentVolumeClaims(e.Namespace).List(ctx, metav1.ListOptions{}); err == nil {
		for _, c := range pvcs.Items {
			logErr("deleting claim "+c.Name, core.PersistentVolumeClaims(e.Namespace).Delete(ctx, c.Name, metav1.DeleteOptions{}))
			if len(c.Finalizers) > 0 {
				_, err := core.PersistentVolumeClaims(e.Namespace).Patch(ctx, c.Name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
				logErr("removing finalizers of claim "+c.Name, err)
			}
		}
	}
	if pvs, err := core.PersistentVolumes().List(ctx, byEnv); err == nil {
		for _, pv := range pvs.Items {
			logErr("deleting volume "+pv.Name, core.PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{}))
			if len(pv.Finalizers) > 0 {
				_, err := core.PersistentVolumes().Patch(ctx, pv.Name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
				logErr("removing finalizers of volume "+pv.Name, err)
			}
		}
	}
	logErr("deleting storage classes", e.Client.StorageV1().StorageClasses().DeleteCollection(ctx, metav1.DeleteOptions{}, byEnv))
	logErr("deleting CSI drivers", e.Client.StorageV1().CSIDrivers().DeleteCollection(ctx, metav1.DeleteOptions{}, byEnv))
	if nodes, err := core.Nodes().List(ctx, byEnv); err == nil {
		for _, n := range nodes.Items {
			logErr("deleting node "+n.Name, core.Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{}))
			logErr("deleting lease "+n.Name, e.Client.CoordinationV1().Leases(v1.NamespaceNodeLease).Delete(ctx, n.Name, metav1.DeleteOptions{}))
		}
	}
	// The namespace controller removes the rest (events, CSIStorageCapacities, ...).
	logErr("deleting namespace", core.Namespaces().Delete(ctx, e.Namespace, metav1.DeleteOptions{}))
}

var nonDNS = regexp.MustCompile(`[^a-z0-9]+`)

// shortName turns a test name into a short DNS label fragment.
func shortName(testName string) string {
	s := strings.Trim(nonDNS.ReplaceAllString(strings.ToLower(testName), "-"), "-")
	s = strings.TrimPrefix(s, "test-")
	s = strings.TrimPrefix(s, "test")
	if len(s) > 24 {
		s = strings.TrimRight(s[:24], "-")
	}
	if s == "" {
		s = "t"
	}
	return s
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
