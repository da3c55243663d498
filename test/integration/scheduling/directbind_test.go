package scheduling

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-helpers/storage/volume"
	"k8s.io/utils/ptr"

	"github.com/berth-dev/berth/test/integration/framework"
)

// bindMode Direct (the default): PreBind completes the bind itself. With no
// PV controller running, the pod is scheduled and the pair is left exactly as
// the controller's bind() would leave it; the controller, started afterwards,
// finds nothing to change.
func TestDirectBindWithoutPVController(t *testing.T) {
	e := framework.NewEnv(t)
	e.StartScheduler()
	class := localClass(e)
	nodes := localNodes(e, 2)
	small := e.CreateLocalPV(framework.LocalPVOptions{Name: e.Name("small"), Hostname: framework.Hostname(nodes[0]), StorageClass: class, Capacity: "10Gi"})
	big := e.CreateLocalPV(framework.LocalPVOptions{Name: e.Name("big"), Hostname: framework.Hostname(nodes[1]), StorageClass: class, Capacity: "100Gi"})
	markAvailable(e, small.Name)
	markAvailable(e, big.Name)
	e.CreatePVC(framework.PVCOptions{Name: "data", StorageClass: class, Request: "8Gi"})
	e.CreatePod(framework.PodOptions{Name: "db", PVCs: []string{"data"}})

	e.WaitForPodScheduledTo("db", nodes[0].Name)
	pvc := e.WaitForPVCBoundTo("data", small.Name)
	assert.Equal(t, v1.ClaimBound, pvc.Status.Phase)
	assert.Equal(t, "yes", pvc.Annotations[volume.AnnBindCompleted])
	assert.Equal(t, "yes", pvc.Annotations[volume.AnnBoundByController])
	capacity := pvc.Status.Capacity[v1.ResourceStorage]
	assert.Equal(t, "10Gi", capacity.String())
	assert.Equal(t, []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}, pvc.Status.AccessModes)
	pv := e.WaitForPVPhase(small.Name, v1.VolumeBound)
	require.NotNil(t, pv.Spec.ClaimRef)
	assert.Equal(t, pvc.UID, pv.Spec.ClaimRef.UID)
	assert.Equal(t, "yes", pv.Annotations[volume.AnnBoundByController])

	// The PV controller, started now, finds the pair consistent and writes
	// neither object. Its volume queue is FIFO: once a PV created after
	// its start is Available, it has synced the bound PV too.
	e.StartControllers(framework.PersistentVolumeBinder)
	probe := e.CreateLocalPV(framework.LocalPVOptions{Name: e.Name("probe"), Hostname: framework.Hostname(nodes[1]), StorageClass: class, Capacity: "1Gi"})
	e.WaitForPVPhase(probe.Name, v1.VolumeAvailable)
	after, err := e.Client.CoreV1().PersistentVolumes().Get(e.Ctx, small.Name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, pv.ResourceVersion, after.ResourceVersion, "the PV controller rewrote the bound PV")
	afterPVC, err := e.Client.CoreV1().PersistentVolumeClaims(e.Namespace).Get(e.Ctx, "data", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, pvc.ResourceVersion, afterPVC.ResourceVersion, "the PV controller rewrote the bound claim")
}

// A bind that cannot be committed is reverted and retried. A
// ValidatingAdmissionPolicy refuses to set spec.volumeName on the claim, for
// PreBind and the PV controller alike, so every attempt fails at the claim
// write: the claimRef PreBind wrote must be released each time (the PV never
// stays promised to a claim not bound to it). Once the policy goes, the pod
// binds.
func TestDirectBindClaimWriteRefusedReverts(t *testing.T) {
	e := framework.NewEnv(t)
	e.StartControllers(framework.PersistentVolumeBinder)
	e.StartScheduler()
	class := localClass(e)
	nodes := localNodes(e, 1)
	pv := e.CreateLocalPV(framework.LocalPVOptions{Name: e.Name("pv"), Hostname: framework.Hostname(nodes[0]), StorageClass: class, Capacity: "10Gi"})
	e.WaitForPVPhase(pv.Name, v1.VolumeAvailable)
	e.CreatePVC(framework.PVCOptions{Name: "data", StorageClass: class, Request: "5Gi"})
	removePolicy := refuseClaimBinding(e, "data")

	e.CreatePod(framework.PodOptions{Name: "db", PVCs: []string{"data"}})
	ev := e.WaitForPodEvent("db", "BerthBindReverted")
	assert.Contains(t, ev.Message, pv.Name)
	e.WaitForPV(pv.Name, "claimRef released", func(p *v1.PersistentVolume) bool { return p.Spec.ClaimRef == nil })
	pvc, err := e.Client.CoreV1().PersistentVolumeClaims(e.Namespace).Get(e.Ctx, "data", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Empty(t, pvc.Spec.VolumeName)

	removePolicy()
	e.WaitForPodScheduledTo("db", nodes[0].Name)
	e.WaitForPVCBoundTo("data", pv.Name)
	e.WaitForPVPhase(pv.Name, v1.VolumeBound)
}

// refuseClaimBinding installs a ValidatingAdmissionPolicy (and binding)
// denying any update that sets spec.volumeName on the named claim in e's
// namespace, waits until the API server enforces it, and returns a function
// removing it.
func refuseClaimBinding(e *framework.Env, claim string) func() {
	e.T.Helper()
	name := e.Name("refuse-bind")
	admission := e.Client.AdmissionregistrationV1()
	_, err := admission.ValidatingAdmissionPolicies().Create(e.Ctx, &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionv1.Fail),
			MatchConstraints: &admissionv1.MatchResources{
				ResourceRules: []admissionv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionv1.RuleWithOperations{
						Operations: []admissionv1.OperationType{admissionv1.Update},
						Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"persistentvolumeclaims"}},
					},
				}},
			},
			MatchConditions: []admissionv1.MatchCondition{{Name: "the-claim", Expression: "object.metadata.name == '" + claim + "'"}},
			Validations: []admissionv1.Validation{{
				Expression: "object.spec.?volumeName.orValue('') == ''",
				Message:    "test policy: this claim may not be bound",
			}},
		},
	}, metav1.CreateOptions{})
	require.NoError(e.T, err)
	_, err = admission.ValidatingAdmissionPolicyBindings().Create(e.Ctx, &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        name,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
			MatchResources: &admissionv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": e.Namespace}},
			},
		},
	}, metav1.CreateOptions{})
	require.NoError(e.T, err)

	// A dry-run bind of the claim shows whether the policy is in force.
	refused := func(ctx context.Context) (bool, error) {
		pvc, err := e.Client.CoreV1().PersistentVolumeClaims(e.Namespace).Get(ctx, claim, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pvc.Spec.VolumeName = "dry-run"
		_, err = e.Client.CoreV1().PersistentVolumeClaims(e.Namespace).Update(ctx, pvc, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
		return apierrors.IsInvalid(err) || apierrors.IsForbidden(err), nil
	}
	e.Eventually("policy enforced", refused)
	return func() {
		require.NoError(e.T, admission.ValidatingAdmissionPolicyBindings().Delete(e.Ctx, name, metav1.DeleteOptions{}))
		require.NoError(e.T, admission.ValidatingAdmissionPolicies().Delete(e.Ctx, name, metav1.DeleteOptions{}))
	}
}
