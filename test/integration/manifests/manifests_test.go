// Package manifests checks manifests/, the kustomize base users install:
// that it renders (what `kubectl kustomize manifests` does, with the same
// kustomize library), that every object passes a server-side dry run
// against a real kube-apiserver (schema, strict field validation,
// admission), and that the scheduler's RBAC covers what the pinned
// Kubernetes version grants kube-scheduler.
package manifests

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/component-helpers/auth/rbac/validation"
	"k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac/bootstrappolicy"

	"github.com/berth-dev/berth/hack/manifests"
	"github.com/berth-dev/berth/test/integration/framework"
)

func TestMain(m *testing.M) { framework.Main(m, framework.MainOptions{}) }

func render(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	objs, err := manifests.Render(manifests.RepoDir())
	require.NoError(t, err, "kustomize build manifests")
	return objs
}

func find[T any](t *testing.T, objs []*unstructured.Unstructured, kind, namespace, name string) *T {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetNamespace() == namespace && o.GetName() == name {
			var out T
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &out))
			return &out
		}
	}
	t.Fatalf("no %s %s/%s in the rendered manifests", kind, namespace, name)
	return nil
}

// TestRender: the kustomization renders the objects a user expects, the
// scheduler's ConfigMap is generated from config/scheduler-config.yaml
// and mounted by the Deployment, and both Deployments have probes and
// resource requests.
func TestRender(t *testing.T) {
	objs := render(t)
	var names []string
	for _, o := range objs {
		names = append(names, o.GetKind()+" "+manifests.Name(o))
	}
	for _, want := range []string{
		"Namespace berth-system",
		"ServiceAccount berth-system/berth-scheduler", "ServiceAccount berth-system/berth-nodefailover",
		"ClusterRole berth-scheduler", "ClusterRoleBinding berth-scheduler",
		"Role kube-system/berth-scheduler-leader-election", "RoleBinding kube-system/berth-scheduler-leader-election",
		"RoleBinding kube-system/berth-scheduler-extension-apiserver-authentication-reader",
		"ClusterRole berth-nodefailover", "ClusterRoleBinding berth-nodefailover",
		"Role kube-system/berth-nodefailover-leader-election", "RoleBinding kube-system/berth-nodefailover-leader-election",
		"ClusterRole berth-metrics-reader",
		"Deployment berth-system/berth-scheduler", "Deployment berth-system/berth-nodefailover",
		"Service berth-system/berth-scheduler-metrics", "Service berth-system/berth-nodefailover-metrics",
	} {
		assert.Contains(t, names, want)
	}

	config, err := os.ReadFile(filepath.Join(manifests.RepoDir(), "config", "scheduler-config.yaml"))
	require.NoError(t, err)
	var cm *v1.ConfigMap
	for _, o := range objs {
		if o.GetKind() == "ConfigMap" && strings.HasPrefix(o.GetName(), "berth-scheduler-config-") {
			cm = find[v1.ConfigMap](t, objs, "ConfigMap", o.GetNamespace(), o.GetName())
		}
	}
	require.NotNil(t, cm, "the generated scheduler ConfigMap (name with content hash)")
	assert.Equal(t, "berth-system", cm.Namespace)
	assert.Equal(t, string(config), cm.Data["scheduler-config.yaml"], "the ConfigMap carries config/scheduler-config.yaml unchanged")

	sched := find[appsv1.Deployment](t, objs, "Deployment", "berth-system", "berth-scheduler")
	var volumes []string
	for _, v := range sched.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil {
			volumes = append(volumes, v.ConfigMap.Name)
		}
	}
	assert.Equal(t, []string{cm.Name}, volumes, "the Deployment mounts the generated ConfigMap (kustomize rewrites the name)")
	assert.Contains(t, sched.Spec.Template.Spec.Containers[0].Command, "--config=/etc/berth/scheduler-config.yaml")

	for _, name := range []string{"berth-scheduler", "berth-nodefailover"} {
		d := find[appsv1.Deployment](t, objs, "Deployment", "berth-system", name)
		assert.Equal(t, name, d.Spec.Template.Spec.ServiceAccountName)
		for _, c := range d.Spec.Template.Spec.Containers {
			assert.NotNil(t, c.LivenessProbe, "%s/%s liveness probe", name, c.Name)
			assert.NotNil(t, c.ReadinessProbe, "%s/%s readiness probe", name, c.Name)
			assert.False(t, c.Resources.Requests.Cpu().IsZero(), "%s/%s CPU request", name, c.Name)
			assert.False(t, c.Resources.Requests.Memory().IsZero(), "%s/%s memory request", name, c.Name)
			assert.Equal(t, "ghcr.io/berth-dev/berth:latest", c.Image)
		}
	}
}

// TestKindOverlay: make e2e-kind deploys the base with the image tag that
// `make image` builds and kind loads.
func TestKindOverlay(t *testing.T) {
	objs, err := manifests.Render(filepath.Join(manifests.RepoDir(), "..", "test", "e2e", "kind"))
	require.NoError(t, err)
	for _, name := range []string{"berth-scheduler", "berth-nodefailover"} {
		d := find[appsv1.Deployment](t, objs, "Deployment", "berth-system", name)
		assert.Equal(t, "ghcr.io/berth-dev/berth:dev", d.Spec.Template.Spec.Containers[0].Image)
	}
}

// TestServerSideDryRun applies every rendered object with DryRun=All and
// strict field validation against the integration kube-apiserver: a
// misspelt field, a wrong type or an object admission rejects fails here.
func TestServerSideDryRun(t *testing.T) {
	e := framework.NewEnv(t)
	objs := render(t)
	applier, err := manifests.NewApplier(e.CP.RESTConfig("berth-manifests-test"))
	require.NoError(t, err)

	// Namespaced objects are only admitted into an existing namespace, so
	// the namespace itself is created for real (and removed afterwards).
	for _, o := range objs {
		if o.GetKind() == "Namespace" {
			_, err := applier.Apply(e.Ctx, o, false)
			require.NoError(t, err)
			name := o.GetName()
			t.Cleanup(func() {
				_ = e.Client.CoreV1().Namespaces().Delete(t.Context(), name, metav1.DeleteOptions{})
			})
		}
	}
	for _, o := range objs {
		out, err := applier.Apply(e.Ctx, o, true)
		if assert.NoError(t, err) {
			assert.Equal(t, o.GetName(), out.GetName())
		}
	}
	// The examples too, into the test's namespace.
	examples, err := manifests.Render(filepath.Join(manifests.RepoDir(), "examples"))
	require.NoError(t, err, "kustomize build manifests/examples")
	var kinds []string
	for _, o := range examples {
		kinds = append(kinds, o.GetKind())
		if o.GetKind() == "Service" || o.GetKind() == "StatefulSet" {
			o.SetNamespace(e.Namespace) // the examples leave it to `-n`
		}
		_, err := applier.Apply(e.Ctx, o, true)
		assert.NoError(t, err)
	}
	assert.ElementsMatch(t, []string{"StorageClass", "PersistentVolume", "Service", "StatefulSet"}, kinds)

	// Dry run means nothing was stored.
	_, err = e.Client.AppsV1().Deployments("berth-system").Get(e.Ctx, "berth-scheduler", metav1.GetOptions{})
	assert.True(t, err != nil, "a dry-run Deployment must not be persisted")
}

// TestSchedulerRBACCoversKubeScheduler: berth-scheduler may do everything
// the bootstrap roles system:kube-scheduler and system:volume-scheduler of
// this Kubernetes version allow (with the feature gates at their
// defaults), except that its leader-election Lease is its own and lives in
// kube-system, granted by a Role there.
func TestSchedulerRBACCoversKubeScheduler(t *testing.T) {
	objs := render(t)
	role := find[rbacv1.ClusterRole](t, objs, "ClusterRole", "", "berth-scheduler")
	lease := find[rbacv1.Role](t, objs, "Role", "kube-system", "berth-scheduler-leader-election")

	var want []rbacv1.PolicyRule
	for _, r := range bootstrappolicy.ClusterRoles() {
		if r.Name != "system:kube-scheduler" && r.Name != "system:volume-scheduler" {
			continue
		}
		for _, rule := range r.Rules {
			if slices.Contains(rule.APIGroups, "coordination.k8s.io") {
				continue // leases and leasecandidates: below
			}
			want = append(want, rule)
		}
	}
	require.NotEmpty(t, want)
	covered, missing := validation.Covers(role.Rules, want)
	assert.True(t, covered, "ClusterRole berth-scheduler lacks what kube-scheduler gets: %v", missing)

	leaseRules := []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{"berth-scheduler"}, Verbs: []string{"get", "update"}},
	}
	covered, missing = validation.Covers(lease.Rules, leaseRules)
	assert.True(t, covered, "Role kube-system/berth-scheduler-leader-election lacks %v", missing)
	covered, _ = validation.Covers(role.Rules, []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"update"}}})
	assert.False(t, covered, "the ClusterRole must not grant leases cluster-wide")
}
