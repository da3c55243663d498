// Package scheduling runs Berth's scheduling scenarios on a real control
// plane: kube-apiserver on embedded etcd, the real PV controller (and, where
// a scenario needs them, the StatefulSet and PVC protection controllers),
// simulated kubelets, and berth-scheduler started from
// manifests/config/scheduler-config.yaml exactly as cmd/scheduler starts it.
//
// Every test starts its own scheduler and controllers and isolates its
// objects by namespace and by a per-test StorageClass, so one control plane
// serves the whole package.
package scheduling

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-dev/berth/test/integration/framework"
)

func TestMain(m *testing.M) {
	framework.Main(m, framework.MainOptions{})
}

// localNodes creates n nodes whose hostname label differs from their name
// and returns them.
func localNodes(e *framework.Env, n int) []*v1.Node {
	nodes := make([]*v1.Node, n)
	for i := range nodes {
		nodes[i] = e.CreateNode(framework.NodeOptions{Name: e.Name(fmt.Sprintf("node%d", i)), Hostname: e.Name(fmt.Sprintf("host%d", i))})
	}
	return nodes
}

// localClass creates a no-provisioner WaitForFirstConsumer class.
func localClass(e *framework.Env) string {
	return e.CreateStorageClass(framework.StorageClassOptions{Name: e.Name("local")}).Name
}

// pvsOfClass lists the class's PVs.
func pvsOfClass(e *framework.Env, class string) []v1.PersistentVolume {
	list, err := e.Client.CoreV1().PersistentVolumes().List(e.Ctx, metav1.ListOptions{})
	require.NoError(e.T, err)
	var out []v1.PersistentVolume
	for _, pv := range list.Items {
		if pv.Spec.StorageClassName == class {
			out = append(out, pv)
		}
	}
	return out
}

// checkNoDoubleClaims asserts that no two PVs of the class name the same
// claim and that every claimRef'd PV's claim is bound to it or the PV is
// still waiting for the PV controller. It returns the number of PVs bound.
func checkNoDoubleClaims(e *framework.Env, class string) int {
	seen := map[string]string{}
	bound := 0
	for _, pv := range pvsOfClass(e, class) {
		if pv.Spec.ClaimRef == nil {
			continue
		}
		key := pv.Spec.ClaimRef.Namespace + "/" + pv.Spec.ClaimRef.Name
		require.NotContains(e.T, seen, key, "claim %s named by PVs %s and %s", key, seen[key], pv.Name)
		seen[key] = pv.Name
		if pv.Status.Phase == v1.VolumeBound {
			bound++
		}
	}
	return bound
}

// allPVCsSettled waits until every claimRef'd PV of the class is bound to a
// claim that is bound back to it: nothing left half-bound.
func allPVCsSettled(e *framework.Env, class string) {
	e.Eventually("every claimed PV of "+class+" bound both ways", func(ctx context.Context) (bool, error) {
		for _, pv := range pvsOfClass(e, class) {
			if pv.Spec.ClaimRef == nil {
				continue
			}
			pvc, err := e.Client.CoreV1().PersistentVolumeClaims(pv.Spec.ClaimRef.Namespace).Get(ctx, pv.Spec.ClaimRef.Name, metav1.GetOptions{})
			if err != nil || pvc.Spec.VolumeName != pv.Name || pvc.Status.Phase != v1.ClaimBound {
				return false, nil
			}
		}
		return true, nil
	})
}

func gi(n int64) string { return resource.NewQuantity(n<<30, resource.BinarySI).String() }
