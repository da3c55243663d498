package scheduling

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/berth-dev/berth/test/integration/framework"
)

// Scenario 8: more pods than PVs. Exactly as many pods bind as there are
// PVs, no PV is claimed twice, the rest stay Pending; when more PVs appear
// the rest bind.
func TestRaceForTheLastPV(t *testing.T) {
	e := framework.NewEnv(t)
	e.StartControllers(framework.PersistentVolumeBinder)
	e.StartScheduler()
	class := localClass(e)
	nodes := localNodes(e, 3)
	const pods, firstPVs = 10, 6
	for i := 0; i < firstPVs; i++ {
		e.CreateLocalPV(framework.LocalPVOptions{Name: e.Name(fmt.Sprintf("pv%d", i)), Hostname: framework.Hostname(nodes[i%3]), StorageClass: class, Capacity: "10Gi"})
	}
	var names []string
	for i := 0; i < pods; i++ {
		claim := fmt.Sprintf("data-%d", i)
		e.CreatePVC(framework.PVCOptions{Name: claim, StorageClass: class, Request: "5Gi"})
		e.CreatePod(framework.PodOptions{Name: fmt.Sprintf("db-%d", i), PVCs: []string{claim}})
		names = append(names, fmt.Sprintf("db-%d", i))
	}
	boundClaims := func(ctx context.Context) (int, error) {
		list, err := e.Client.CoreV1().PersistentVolumeClaims(e.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return 0, err
		}
		n := 0
		for _, c := range list.Items {
			if c.Status.Phase == v1.ClaimBound {
				n++
			}
		}
		return n, nil
	}
	e.Eventually(fmt.Sprintf("%d claims bound", firstPVs), func(ctx context.Context) (bool, error) {
		n, err := boundClaims(ctx)
		return n == firstPVs, err
	})
	// The remaining pods stay unscheduled and no further claim binds. (A
	// pod may briefly show SchedulerError instead of Unschedulable when its
	// PreBind lost a write conflict, so the condition reason is not checked.)
	unscheduled := func(ctx context.Context) (int, error) {
		list, err := e.Client.CoreV1().Pods(e.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return 0, err
		}
		n := 0
		for _, p := range list.Items {
			if p.Spec.NodeName == "" {
				n++
			}
		}
		return n, nil
	}
	e.Consistently(fmt.Sprintf("%d pods unscheduled, %d claims bound", pods-firstPVs, firstPVs), 3*time.Second, func(ctx context.Context) (bool, error) {
		u, err := unscheduled(ctx)
		if err != nil {
			return false, err
		}
		b, err := boundClaims(ctx)
		return u == pods-firstPVs && b == firstPVs, err
	})
	assert.Equal(t, firstPVs, checkNoDoubleClaims(e, class))

	for i := firstPVs; i < pods; i++ {
		e.CreateLocalPV(framework.LocalPVOptions{Name: e.Name(fmt.Sprintf("pv%d", i)), Hostname: framework.Hostname(nodes[i%3]), StorageClass: class, Capacity: "10Gi"})
	}
	waitAllScheduled(e, names)
	e.Eventually("all claims bound", func(ctx context.Context) (bool, error) {
		n, err := boundClaims(ctx)
		return n == pods, err
	})
	allPVCsSettled(e, class)
	assert.Equal(t, pods, checkNoDoubleClaims(e, class))
}

// Scenario 9: the claim is deleted while PreBind waits for the PV controller
// (bindMode PVController; the controller is not running yet, so the wait is
// certain). PreBind must notice, revert the claimRef it wrote so the PV is
// usable again, and the pod must be retried: once the claim is recreated and
// the PV controller runs, it binds.
func TestBindFailureRevertsPV(t *testing.T) {
	e := framework.NewEnv(t)
	e.StartScheduler(framework.WithPluginArgs("LocalVolumeBinding", map[string]any{"bindMode": "PVController"}))
	class := localClass(e)
	nodes := localNodes(e, 1)
	pv := e.CreateLocalPV(framework.LocalPVOptions{Name: e.Name("pv"), Hostname: framework.Hostname(nodes[0]), StorageClass: class, Capacity: "10Gi"})
	// The PV controller normally marks a new PV Available; do it here.
	markAvailable(e, pv.Name)
	e.CreatePVC(framework.PVCOptions{Name: "data", StorageClass: class, Request: "5Gi"})
	e.CreatePod(framework.PodOptions{Name: "db", PVCs: []string{"data"}})

	e.WaitForPV(pv.Name, "claimRef written by PreBind", func(pv *v1.PersistentVolume) bool {
		return pv.Spec.ClaimRef != nil && pv.Spec.ClaimRef.Name == "data"
	})
	require.NoError(t, e.Client.CoreV1().PersistentVolumeClaims(e.Namespace).Delete(e.Ctx, "data", metav1.DeleteOptions{}))
	e.WaitForPV(pv.Name, "claimRef reverted", func(pv *v1.PersistentVolume) bool { return pv.Spec.ClaimRef == nil })
	ev := e.WaitForPodEvent("db", "BerthBindReverted")
	assert.Contains(t, ev.Message, pv.Name)
	// No PVC protection controller runs: release the claim's finalizer as
	// it would once no running pod uses the claim.
	_, err := e.Client.CoreV1().PersistentVolumeClaims(e.Namespace).Patch(e.Ctx, "data", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	e.Eventually("old claim gone", func(ctx context.Context) (bool, error) {
		_, err := e.Client.CoreV1().PersistentVolumeClaims(e.Namespace).Get(ctx, "data", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})

	e.CreatePVC(framework.PVCOptions{Name: "data", StorageClass: class, Request: "5Gi"})
	e.StartControllers(framework.PersistentVolumeBinder)
	e.WaitForPodScheduledTo("db", nodes[0].Name)
	e.WaitForPVCBoundTo("data", pv.Name)
}

// Scenario 9b: PreBind times out waiting for the PV controller (bindMode
// PVController, no controller running) → the claimRef is reverted and the PV
// is Available for the retry, which succeeds once the PV controller runs.
func TestBindTimeoutReverts(t *testing.T) {
	e := framework.NewEnv(t)
	e.StartScheduler(framework.WithPluginArgs("LocalVolumeBinding", map[string]any{"bindTimeoutSeconds": 2, "bindMode": "PVController"}))
	class := localClass(e)
	nodes := localNodes(e, 1)
	pv := e.CreateLocalPV(framework.LocalPVOptions{Name: e.Name("pv"), Hostname: framework.Hostname(nodes[0]), StorageClass: class, Capacity: "10Gi"})
	markAvailable(e, pv.Name)
	e.CreatePVC(framework.PVCOptions{Name: "data", StorageClass: class, Request: "5Gi"})
	e.CreatePod(framework.PodOptions{Name: "db", PVCs: []string{"data"}})
	ev := e.WaitForPodEvent("db", "BerthBindReverted")
	assert.Contains(t, ev.Message, pv.Name)
	e.WaitForPV(pv.Name, "Available without claimRef", func(p *v1.PersistentVolume) bool {
		return p.Status.Phase == v1.VolumeAvailable
	})

	e.StartControllers(framework.PersistentVolumeBinder)
	e.WaitForPodScheduledTo("db", nodes[0].Name)
	e.WaitForPVCBoundTo("data", pv.Name)
}

// markAvailable sets a new PV's phase as the PV controller would.
func markAvailable(e *framework.Env, name string) {
	e.Eventually("PV "+name+" Available", func(ctx context.Context) (bool, error) {
		pv, err := e.Client.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if pv.Status.Phase == v1.VolumeAvailable {
			return true, nil
		}
		pv.Status.Phase = v1.VolumeAvailable
		_, err = e.Client.CoreV1().PersistentVolumes().UpdateStatus(ctx, pv, metav1.UpdateOptions{})
		return err == nil, nil
	})
}

// Scenario 10: like upstream TestVolumeBindingStress: 100 pods with 3
// delayed claims each on 10 nodes. Every pod scheduled, every claim bound,
// no PV claimed twice, and no PV left promised (claimRef without a bind).
func TestVolumeBindingStress(t *testing.T) {
	e := framework.NewEnv(t)
	e.Timeout = 5 * 60e9
	e.StartControllers(framework.PersistentVolumeBinder)
	e.StartScheduler()
	class := localClass(e)
	nodes := localNodes(e, 10)
	const pods, claims = 100, 3
	for i := 0; i < pods*claims+20; i++ {
		e.CreateLocalPV(framework.LocalPVOptions{Name: e.Name(fmt.Sprintf("pv%03d", i)), Hostname: framework.Hostname(nodes[i%10]), StorageClass: class, Capacity: gi(int64(5 + i%4))})
	}
	var names []string
	for p := 0; p < pods; p++ {
		var pvcs []string
		for c := 0; c < claims; c++ {
			name := fmt.Sprintf("d%03d-%d", p, c)
			e.CreatePVC(framework.PVCOptions{Name: name, StorageClass: class, Request: gi(int64(1 + c))})
			pvcs = append(pvcs, name)
		}
		name := fmt.Sprintf("db-%03d", p)
		e.CreatePod(framework.PodOptions{Name: name, PVCs: pvcs})
		names = append(names, name)
	}
	waitAllScheduled(e, names)
	allPVCsSettled(e, class)
	assert.Equal(t, pods*claims, checkNoDoubleClaims(e, class))
}

// Scenario 11: the scheduler is stopped and restarted while pods are
// binding. Every pod ends scheduled with its claim bound exactly once, and
// no PV is left with a claimRef to a claim not bound to it.
func TestSchedulerRestartMidBinding(t *testing.T) {
	e := framework.NewEnv(t)
	e.Timeout = 3 * 60e9
	e.StartControllers(framework.PersistentVolumeBinder)
	class := localClass(e)
	nodes := localNodes(e, 4)
	const pods = 40
	for i := 0; i < pods; i++ {
		e.CreateLocalPV(framework.LocalPVOptions{Name: e.Name(fmt.Sprintf("pv%02d", i)), Hostname: framework.Hostname(nodes[i%4]), StorageClass: class, Capacity: "10Gi"})
	}
	var names []string
	for i := 0; i < pods; i++ {
		claim := fmt.Sprintf("data-%02d", i)
		e.CreatePVC(framework.PVCOptions{Name: claim, StorageClass: class, Request: "5Gi"})
		e.CreatePod(framework.PodOptions{Name: fmt.Sprintf("db-%02d", i), PVCs: []string{claim}})
		names = append(names, fmt.Sprintf("db-%02d", i))
	}
	first := e.StartScheduler()
	e.Eventually("some PVs claimed", func(ctx context.Context) (bool, error) {
		claimed := 0
		for _, pv := range pvsOfClass(e, class) {
			if pv.Spec.ClaimRef != nil {
				claimed++
			}
		}
		return claimed >= 5, nil
	})
	first.Stop()
	e.StartScheduler()
	waitAllScheduled(e, names)
	allPVCsSettled(e, class)
	assert.Equal(t, pods, checkNoDoubleClaims(e, class))
}
