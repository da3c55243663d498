// Package smoke checks that the integration harness
// (test/integration/framework) works end to end: control plane, controllers,
// simulated kubelet and the Berth scheduler started like cmd/scheduler.
package smoke

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-dev/berth/test/integration/framework"
)

// One control plane for the whole package; each test isolates itself with
// its own Env (namespace + unique names).
func TestMain(m *testing.M) {
	framework.Main(m, framework.MainOptions{})
}

func TestSmoke(t *testing.T) {
	e := framework.NewEnv(t)
	e.StartControllers(framework.PersistentVolumeBinder, framework.NodeLifecycle)

	// Two nodes whose kubernetes.io/hostname differs from the node name.
	nodeA := e.CreateNode(framework.NodeOptions{Name: e.Name("a"), Hostname: e.Name("host-a"), CPU: "4", Memory: "8Gi"})
	nodeB := e.CreateNode(framework.NodeOptions{Name: e.Name("b"), Hostname: e.Name("host-b"), CPU: "4", Memory: "8Gi"})

	e.Run("PV controller binds an Immediate claim", func(e *framework.Env) {
		sc := e.CreateStorageClass(framework.StorageClassOptions{
			Name:        e.Name("immediate"),
			BindingMode: storagev1.VolumeBindingImmediate,
		})
		pv := e.CreateLocalPV(framework.LocalPVOptions{
			Name: e.Name("pv-a"), Hostname: framework.Hostname(nodeA), StorageClass: sc.Name, Capacity: "5Gi",
		})
		e.CreatePVC(framework.PVCOptions{Name: "immediate", StorageClass: sc.Name, Request: "1Gi"})
		e.WaitForPVCBoundTo("immediate", pv.Name)
		e.WaitForPVPhase(pv.Name, v1.VolumeBound)
	})

	var podNode string
	e.Run("berth-scheduler schedules a plain pod, the kubelet runs it", func(e *framework.Env) {
		sched := e.StartScheduler()
		assert.Equal(e.T, []string{framework.BerthSchedulerName}, sched.Profiles)
		e.CreatePod(framework.PodOptions{Name: "plain", CPU: "500m", Memory: "256Mi"})
		pod := e.WaitForPodScheduled("plain")
		assert.Contains(e.T, []string{nodeA.Name, nodeB.Name}, pod.Spec.NodeName)
		e.WaitForPodRunning("plain")
		ev := e.WaitForPodEvent("plain", "Scheduled")
		assert.Equal(e.T, framework.BerthSchedulerName, ev.ReportingController)
		podNode = pod.Spec.NodeName

		// Restart: a pod created while no scheduler runs is scheduled by
		// the next one.
		sched.Stop()
		require.NoError(e.T, sched.Err())
		e.CreatePod(framework.PodOptions{Name: "after-restart"})
		e.Consistently("pod after-restart pending while the scheduler is down", framework.PollInterval*5, func(ctx context.Context) (bool, error) {
			p, err := e.Client.CoreV1().Pods(e.Namespace).Get(ctx, "after-restart", metav1.GetOptions{})
			return err == nil && p.Spec.NodeName == "", err
		})
		// Restarted with a patched plugin argument, which must still load.
		e.StartScheduler(framework.WithPluginArgs("LocalVolumeBinding", map[string]any{"bindTimeoutSeconds": 30}))
		e.WaitForPodScheduled("after-restart")
		e.WaitForPodRunning("after-restart")
	})
	require.NotEmpty(t, podNode)

	e.Run("a node that stops heartbeating is marked Unknown and tainted unreachable", func(e *framework.Env) {
		e.StopNode(podNode)
		e.WaitForNodeCondition(podNode, v1.NodeReady, v1.ConditionUnknown)
		e.WaitForNodeTaint(podNode, v1.TaintNodeUnreachable, v1.TaintEffectNoSchedule)
		e.WaitForNodeTaint(podNode, v1.TaintNodeUnreachable, v1.TaintEffectNoExecute)
		// The node lifecycle controller marks its pods not ready.
		e.WaitForPod("plain", "not ready", func(p *v1.Pod) bool {
			c := framework.PodCondition(p, v1.PodReady)
			return c != nil && c.Status == v1.ConditionFalse
		})

		e.ResumeNode(podNode)
		e.WaitForNodeCondition(podNode, v1.NodeReady, v1.ConditionTrue)
		e.WaitForNodeNoTaint(podNode, v1.TaintNodeUnreachable, v1.TaintEffectNoExecute)
		e.WaitForNodeNoTaint(podNode, v1.TaintNodeUnreachable, v1.TaintEffectNoSchedule)
		e.WaitForPodRunning("plain")
	})
}
