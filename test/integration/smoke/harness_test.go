package smoke

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-dev/berth/test/integration/framework"
)

// TestHarnessWithInTreeProfile exercises the storage helpers against the
// in-tree default profile (in-tree VolumeBinding), independently of Berth's
// plugins: static local PVs, the FakeProvisioner with CSIStorageCapacity,
// generic ephemeral volumes, StatefulSets with volumeClaimTemplates, and
// the claim/volume protection and garbage collector controllers.
func TestHarnessWithInTreeProfile(t *testing.T) {
	e := framework.NewEnv(t)
	e.StartControllers(framework.PersistentVolumeBinder, framework.PVCProtection, framework.PVProtection,
		framework.StatefulSet, framework.GarbageCollector, framework.PodGC)
	e.StartScheduler(framework.WithInTreeDefaultProfile(framework.DefaultSchedulerName))

	nodeA := e.CreateNode(framework.NodeOptions{Name: e.Name("a")})
	nodeB := e.CreateNode(framework.NodeOptions{Name: e.Name("b"), Hostname: e.Name("host-b")})
	local := e.CreateStorageClass(framework.StorageClassOptions{Name: e.Name("local")})

	e.Run("static local PV, WaitForFirstConsumer", func(e *framework.Env) {
		pv := e.CreateLocalPV(framework.LocalPVOptions{Name: e.Name("pv-b"), Hostname: framework.Hostname(nodeB), StorageClass: local.Name})
		e.CreatePVC(framework.PVCOptions{Name: "static", StorageClass: local.Name})
		e.CreatePod(framework.PodOptions{Name: "static", SchedulerName: framework.DefaultSchedulerName, PVCs: []string{"static"}})
		e.WaitForPodScheduledTo("static", nodeB.Name)
		e.WaitForPVCBoundTo("static", pv.Name)
		e.WaitForPodRunning("static")
	})

	prov := e.StartFakeProvisioner(framework.FakeProvisionerOptions{})
	e.CreateCSIDriver(prov.Name, true)
	dynamic := e.CreateStorageClass(framework.StorageClassOptions{Name: e.Name("dynamic"), Provisioner: prov.Name})
	// Capacity only on node A: the scheduler must provision there.
	e.CreateCSIStorageCapacity(framework.CSIStorageCapacityOptions{StorageClass: dynamic.Name, Hostname: framework.Hostname(nodeA), Capacity: "100Gi"})

	e.Run("FakeProvisioner provisions where CSIStorageCapacity allows", func(e *framework.Env) {
		e.CreatePVC(framework.PVCOptions{Name: "provisioned", StorageClass: dynamic.Name, Request: "2Gi"})
		e.CreatePod(framework.PodOptions{Name: "provisioned", SchedulerName: framework.DefaultSchedulerName, PVCs: []string{"provisioned"},
			EphemeralVolumes: []framework.EphemeralVolume{{Name: "scratch", Claim: framework.PVCOptions{StorageClass: dynamic.Name}}}})
		e.WaitForPodScheduledTo("provisioned", nodeA.Name)
		pvc := e.WaitForPVCBound("provisioned")
		e.WaitForPVCBound(framework.EphemeralClaimName("provisioned", "scratch"))
		pv, err := e.Client.CoreV1().PersistentVolumes().Get(e.Ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
		require.NoError(e.T, err)
		assert.Equal(e.T, prov.Name, pv.Annotations[framework.AnnProvisionedBy])
		assert.Equal(e.T, framework.HostnameAffinity(framework.Hostname(nodeA)), pv.Spec.NodeAffinity)
		assert.Len(e.T, prov.Provisioned(), 2)
	})

	e.Run("StatefulSet with volumeClaimTemplates", func(e *framework.Env) {
		e.CreateStatefulSet(framework.StatefulSetOptions{
			Name: "web", Replicas: 2, SchedulerName: framework.DefaultSchedulerName,
			PodManagementPolicy:  appsv1.ParallelPodManagement,
			VolumeClaimTemplates: []framework.PVCOptions{{Name: "data", StorageClass: dynamic.Name}},
			PVCRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
				WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
			},
		})
		e.WaitForStatefulSetReady("web")
		for i := range 2 {
			e.WaitForPVCBound(framework.StatefulSetClaimName("data", "web", i))
			e.WaitForPodScheduledTo(framework.StatefulSetPodName("web", i), nodeA.Name)
		}

		// Deleting the set: the garbage collector deletes pods and (retention
		// policy Delete) claims; PVC protection lets the claims go once the
		// pods are gone; the FakeProvisioner deletes the released volumes.
		require.NoError(e.T, e.Client.AppsV1().StatefulSets(e.Namespace).Delete(e.Ctx, "web", metav1.DeleteOptions{}))
		for i := range 2 {
			e.WaitForPodDeleted(framework.StatefulSetPodName("web", i))
			claim := framework.StatefulSetClaimName("data", "web", i)
			e.Eventually("claim "+claim+" deleted", func(ctx context.Context) (bool, error) {
				_, err := e.Client.CoreV1().PersistentVolumeClaims(e.Namespace).Get(ctx, claim, metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					return true, nil
				}
				return false, err
			})
		}
	})

	e.Run("pod GC deletes pods of deleted nodes", func(e *framework.Env) {
		gone := e.CreateNode(framework.NodeOptions{Name: e.Name("gone")})
		e.CreatePod(framework.PodOptions{Name: "orphan", NodeName: gone.Name})
		e.WaitForPodRunning("orphan")
		e.Kubelet.Unregister(gone.Name)
		require.NoError(e.T, e.Client.CoreV1().Nodes().Delete(e.Ctx, gone.Name, metav1.DeleteOptions{}))
		e.WaitForPodDeleted("orphan")
	})
}
