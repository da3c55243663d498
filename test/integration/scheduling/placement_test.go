package scheduling

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-dev/berth/test/integration/framework"
)

// Scenario 1: the pod goes to the node whose PV fits its claim most tightly.
// The in-tree plugin (without the alpha StorageCapacityScoring gate) does not
// score volume fit at all (kubernetes#83323).
func TestTightestFitAcrossNodes(t *testing.T) {
	e := framework.NewEnv(t)
	e.StartControllers(framework.PersistentVolumeBinder)
	e.StartScheduler()
	class := localClass(e)
	nodes := localNodes(e, 3)
	for i, size := range []string{"100Gi", "12Gi", "50Gi"} {
		e.CreateLocalPV(framework.LocalPVOptions{Name: e.Name("pv-" + strings.ToLower(size)), Hostname: framework.Hostname(nodes[i]), StorageClass: class, Capacity: size})
	}
	e.CreatePVC(framework.PVCOptions{Name: "data", StorageClass: class, Request: "10Gi"})
	e.CreatePod(framework.PodOptions{Name: "db", PVCs: []string{"data"}})

	e.WaitForPodScheduledTo("db", nodes[1].Name)
	e.WaitForPVCBoundTo("data", e.Name("pv-12gi"))
}

// The same placement under the in-tree default profile of 1.37, where the
// StorageCapacityScoring gate is on by default with a shape that prefers the
// emptiest volume: the 10Gi claim takes the 100Gi disk.
func TestTightestFitInTreeDefaultTakesLargest(t *testing.T) {
	e := framework.NewEnv(t)
	e.StartControllers(framework.PersistentVolumeBinder)
	e.StartScheduler(framework.WithInTreeDefaultProfile("in-tree"))
	class := localClass(e)
	nodes := localNodes(e, 3)
	for i, size := range []string{"100Gi", "12Gi", "50Gi"} {
		e.CreateLocalPV(framework.LocalPVOptions{Name: e.Name("pv-" + strings.ToLower(size)), Hostname: framework.Hostname(nodes[i]), StorageClass: class, Capacity: size})
	}
	e.CreatePVC(framework.PVCOptions{Name: "data", StorageClass: class, Request: "10Gi"})
	e.CreatePod(framework.PodOptions{Name: "db", SchedulerName: "in-tree", PVCs: []string{"data"}})

	e.WaitForPodScheduledTo("db", nodes[0].Name)
	e.WaitForPVCBoundTo("data", e.Name("pv-100gi"))
}

// Scenario 2: claims A=10Gi and B=20Gi (selector tier=fast) against P1=20Gi
// tier=fast and P2=100Gi. The in-tree greedy loop gives A the smallest fit,
// P1, and then B fits nothing; Berth finds A→P2, B→P1. The same pod under
// the in-tree default profile stays Pending, which the test also checks.
func TestMultiClaimSelectorTrap(t *testing.T) {
	e := framework.NewEnv(t)
	e.StartControllers(framework.PersistentVolumeBinder)
	e.StartScheduler()
	e.StartScheduler(framework.WithInTreeDefaultProfile("in-tree"))
	class := localClass(e)
	node := localNodes(e, 1)[0]
	fast := &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "fast"}}

	for _, sched := range []string{framework.BerthSchedulerName, "in-tree"} {
		suffix := sched
		p1 := e.CreateLocalPV(framework.LocalPVOptions{Name: e.Name("p1-" + suffix), Hostname: framework.Hostname(node), StorageClass: class, Capacity: "20Gi", Labels: map[string]string{"tier": "fast", "for": suffix}})
		p2 := e.CreateLocalPV(framework.LocalPVOptions{Name: e.Name("p2-" + suffix), Hostname: framework.Hostname(node), StorageClass: class, Capacity: "100Gi", Labels: map[string]string{"for": suffix}})
		forThis := func(extra map[string]string) *metav1.LabelSelector {
			m := map[string]string{"for": suffix}
			for k, v := range extra {
				m[k] = v
			}
			return &metav1.LabelSelector{MatchLabels: m}
		}
		e.CreatePVC(framework.PVCOptions{Name: "a-" + suffix, StorageClass: class, Request: "10Gi", Selector: forThis(nil)})
		e.CreatePVC(framework.PVCOptions{Name: "b-" + suffix, StorageClass: class, Request: "20Gi", Selector: forThis(fast.MatchLabels)})
		e.CreatePod(framework.PodOptions{Name: "db-" + suffix, SchedulerName: sched, PVCs: []string{"a-" + suffix, "b-" + suffix}})
		if sched == framework.BerthSchedulerName {
			e.WaitForPodScheduledTo("db-"+suffix, node.Name)
			e.WaitForPVCBoundTo("a-"+suffix, p2.Name)
			e.WaitForPVCBoundTo("b-"+suffix, p1.Name)
		} else {
			pod := e.WaitForPodUnschedulable("db-" + suffix)
			assert.Empty(t, pod.Spec.NodeName, "the in-tree plugin is expected to fail the selector trap")
		}
	}
}

// Scenario 3: a bound local PV pins the pod to the node with that hostname
// label, whose name differs (kubernetes#125336). A decoy node is NAMED like
// the hostname so a plugin that assumed name == hostname would pick it.
func TestBoundPVHostnameDiffersFromNodeName(t *testing.T) {
	e := framework.NewEnv(t)
	e.StartControllers(framework.PersistentVolumeBinder)
	e.StartScheduler()
	immediate := e.CreateStorageClass(framework.StorageClassOptions{Name: e.Name("immediate"), BindingMode: storagev1.VolumeBindingImmediate}).Name
	real := e.CreateNode(framework.NodeOptions{Name: e.Name("real"), Hostname: e.Name("disk-host")})
	decoy := e.CreateNode(framework.NodeOptions{Name: e.Name("disk-host"), Hostname: e.Name("decoy-host")})
	require.NotEqual(t, real.Name, decoy.Name)

	pv := e.CreateLocalPV(framework.LocalPVOptions{Name: e.Name("pv"), Hostname: e.Name("disk-host"), StorageClass: immediate, Capacity: "10Gi"})
	e.CreatePVC(framework.PVCOptions{Name: "data", StorageClass: immediate, Request: "5Gi"})
	e.WaitForPVCBoundTo("data", pv.Name)
	e.CreatePod(framework.PodOptions{Name: "db", PVCs: []string{"data"}})
	e.WaitForPodScheduledTo("db", real.Name)
	e.WaitForPodRunning("db")
}

// Scenario 4: a PV pre-bound by an admin (claimRef without UID) is the only
// volume its claim may take, even when a tighter PV exists elsewhere; a pod
// whose Immediate claim is unbound waits for the PV controller.
func TestPreboundAndImmediateClaims(t *testing.T) {
	e := framework.NewEnv(t)
	e.StartScheduler()
	class := localClass(e)
	nodes := localNodes(e, 2)

	e.Run("pre-bound PV honoured", func(e *framework.Env) {
		e.CreateLocalPV(framework.LocalPVOptions{Name: e.Name("tight"), Hostname: framework.Hostname(nodes[0]), StorageClass: class, Capacity: "10Gi"})
		pre := e.CreateLocalPV(framework.LocalPVOptions{Name: e.Name("prebound"), Hostname: framework.Hostname(nodes[1]), StorageClass: class, Capacity: "80Gi",
			ClaimRef: &v1.ObjectReference{Namespace: e.Namespace, Name: "data"}})
		e.StartControllers(framework.PersistentVolumeBinder)
		e.CreatePVC(framework.PVCOptions{Name: "data", StorageClass: class, Request: "10Gi"})
		e.CreatePod(framework.PodOptions{Name: "db", PVCs: []string{"data"}})
		e.WaitForPodScheduledTo("db", nodes[1].Name)
		e.WaitForPVCBoundTo("data", pre.Name)
	})

	e.Run("unbound Immediate claim waits for the PV controller", func(e *framework.Env) {
		immediate := e.CreateStorageClass(framework.StorageClassOptions{Name: e.Name("immediate"), BindingMode: storagev1.VolumeBindingImmediate}).Name
		e.CreatePVC(framework.PVCOptions{Name: "imm", StorageClass: immediate, Request: "1Gi"})
		e.CreatePod(framework.PodOptions{Name: "imm-pod", PVCs: []string{"imm"}})
		ev := e.WaitForPodEvent("imm-pod", "FailedScheduling")
		assert.Contains(t, ev.Message, "unbound immediate PersistentVolumeClaims")
		e.StartControllers(framework.PersistentVolumeBinder)
		pv := e.CreateLocalPV(framework.LocalPVOptions{Name: e.Name("imm-pv"), Hostname: framework.Hostname(nodes[0]), StorageClass: immediate, Capacity: "1Gi"})
		e.WaitForPVCBoundTo("imm", pv.Name)
		e.WaitForPodScheduledTo("imm-pod", nodes[0].Name)
	})
}

// Scenario 5: a 3-replica StatefulSet with required anti-affinity and a
// volumeClaimTemplate: every replica Running, every claim Bound, one per node.
func TestStatefulSetWithAntiAffinity(t *testing.T) {
	e := framework.NewEnv(t)
	e.StartControllers(framework.PersistentVolumeBinder, framework.StatefulSet, framework.PVCProtection)
	e.StartScheduler()
	class := localClass(e)
	nodes := localNodes(e, 4)
	for _, n := range nodes {
		for _, size := range []string{"20Gi", "200Gi"} {
			e.CreateLocalPV(framework.LocalPVOptions{Name: e.Name(n.Name[len(n.Name)-5:] + "-" + strings.ToLower(size)), Hostname: framework.Hostname(n), StorageClass: class, Capacity: size})
		}
	}
	name := "db"
	e.CreateStatefulSet(framework.StatefulSetOptions{
		Name: name, Replicas: 3, PodManagementPolicy: "Parallel",
		VolumeClaimTemplates: []framework.PVCOptions{{Name: "data", StorageClass: class, Request: "15Gi"}},
		Affinity: &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []v1.PodAffinityTerm{{
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			TopologyKey:   v1.LabelHostname,
		}}}},
	})
	e.WaitForStatefulSetReady(name)
	used := map[string]bool{}
	for i := 0; i < 3; i++ {
		pod := e.WaitForPodRunning(framework.StatefulSetPodName(name, i))
		assert.False(t, used[pod.Spec.NodeName], "two replicas on %s", pod.Spec.NodeName)
		used[pod.Spec.NodeName] = true
		pvc := e.WaitForPVCBound(framework.StatefulSetClaimName("data", name, i))
		pv, err := e.Client.CoreV1().PersistentVolumes().Get(e.Ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
		require.NoError(t, err)
		assert.True(t, strings.HasSuffix(pv.Name, "-20gi"), "replica %d got %s, want a 20Gi volume", i, pv.Name)
	}
}

// Scenario 6: one local claim plus one claim provisioned by a CSI driver
// that tracks capacity; only node 1 has enough capacity, so the pod goes
// there although both nodes have local volumes. A generic ephemeral volume
// of the local class binds too.
func TestMixedLocalProvisionedAndEphemeral(t *testing.T) {
	e := framework.NewEnv(t)
	e.StartControllers(framework.PersistentVolumeBinder)
	e.StartScheduler()
	local := localClass(e)
	nodes := localNodes(e, 2)
	for _, n := range nodes {
		e.CreateLocalPV(framework.LocalPVOptions{Name: e.Name(n.Name[len(n.Name)-5:] + "-a"), Hostname: framework.Hostname(n), StorageClass: local, Capacity: "10Gi"})
		e.CreateLocalPV(framework.LocalPVOptions{Name: e.Name(n.Name[len(n.Name)-5:] + "-b"), Hostname: framework.Hostname(n), StorageClass: local, Capacity: "10Gi"})
	}
	prov := e.StartFakeProvisioner(framework.FakeProvisionerOptions{})
	e.CreateCSIDriver(prov.Name, true)
	dyn := e.CreateStorageClass(framework.StorageClassOptions{Name: e.Name("dynamic"), Provisioner: prov.Name}).Name
	e.CreateCSIStorageCapacity(framework.CSIStorageCapacityOptions{StorageClass: dyn, Hostname: framework.Hostname(nodes[0]), Capacity: "5Gi"})
	e.CreateCSIStorageCapacity(framework.CSIStorageCapacityOptions{StorageClass: dyn, Hostname: framework.Hostname(nodes[1]), Capacity: "100Gi"})

	e.CreatePVC(framework.PVCOptions{Name: "local", StorageClass: local, Request: "5Gi"})
	e.CreatePVC(framework.PVCOptions{Name: "dyn", StorageClass: dyn, Request: "50Gi"})
	e.CreatePod(framework.PodOptions{Name: "db", PVCs: []string{"local", "dyn"},
		EphemeralVolumes: []framework.EphemeralVolume{{Name: "scratch", Claim: framework.PVCOptions{StorageClass: local, Request: "1Gi"}}}})
	e.WaitForPodScheduledTo("db", nodes[1].Name)
	e.WaitForPVCBound("local")
	e.WaitForPVCBound("dyn")
	e.WaitForPVCBound("db-scratch")
}

// Scenario 7: no room anywhere → Pending with a reason naming the claim and
// why; a fitting PV created later schedules the pod at once through the
// queueing hint, well before the 5-minute flush of unschedulable pods.
func TestNoRoomThenPVAppears(t *testing.T) {
	e := framework.NewEnv(t)
	e.StartControllers(framework.PersistentVolumeBinder)
	e.StartScheduler()
	class := localClass(e)
	nodes := localNodes(e, 2)
	e.CreateLocalPV(framework.LocalPVOptions{Name: e.Name("small"), Hostname: framework.Hostname(nodes[0]), StorageClass: class, Capacity: "10Gi"})
	e.CreatePVC(framework.PVCOptions{Name: "big", StorageClass: class, Request: "500Gi"})
	e.CreatePod(framework.PodOptions{Name: "db", PVCs: []string{"big"}})
	ev := e.WaitForPodEvent("db", "FailedScheduling")
	assert.Contains(t, ev.Message, "claim "+e.Namespace+"/big (500Gi): no local PV fits: 1 too small")

	start := time.Now()
	pv := e.CreateLocalPV(framework.LocalPVOptions{Name: e.Name("big"), Hostname: framework.Hostname(nodes[1]), StorageClass: class, Capacity: "600Gi"})
	e.WaitForPodScheduledTo("db", nodes[1].Name)
	e.WaitForPVCBoundTo("big", pv.Name)
	t.Logf("scheduled %v after the fitting PV appeared", time.Since(start))
	assert.Less(t, time.Since(start), 30*time.Second)
}

func waitAllScheduled(e *framework.Env, names []string) {
	e.Eventually("all pods scheduled", func(ctx context.Context) (bool, error) {
		for _, n := range names {
			p, err := e.Client.CoreV1().Pods(e.Namespace).Get(ctx, n, metav1.GetOptions{})
			if err != nil || p.Spec.NodeName == "" {
				return false, nil
			}
		}
		return true, nil
	})
}
