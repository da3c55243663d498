package nodefailover

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics/testutil"
	"k8s.io/klog/v2/ktesting"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/berth-dev/berth/pkg/nodefailover/policy"
)

// These tests cover the plumbing only (which API calls, in which order,
// with which preconditions) on a fake clientset; the behaviour against real
// controllers is in test/integration/nodefailover.

var now = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

const ns = "db"

type fixture struct {
	t        *testing.T
	client   *fake.Clientset
	ctrl     *Controller
	recorder *record.FakeRecorder
	clock    *testingclock.FakeClock
	objects  []runtime.Object
	cfg      Config
}

func newFixture(t *testing.T) *fixture {
	cfg := DefaultConfig()
	return &fixture{t: t, cfg: cfg, clock: testingclock.NewFakeClock(now)}
}

func (f *fixture) add(objs ...runtime.Object) { f.objects = append(f.objects, objs...) }

// start builds the controller and syncs its informers.
func (f *fixture) start() context.Context {
	_, ctx := ktesting.NewTestContext(f.t)
	ctx, cancel := context.WithCancel(ctx)
	f.client = fake.NewClientset(f.objects...)
	factory := informers.NewSharedInformerFactory(f.client, 0)
	f.recorder = record.NewFakeRecorder(100)
	ctrl, err := New(f.client, nil, nil, factory, f.cfg, WithClock(f.clock), WithRecorder(f.recorder))
	require.NoError(f.t, err)
	f.ctrl = ctrl
	factory.Start(ctx.Done())
	f.t.Cleanup(func() {
		cancel()
		factory.Shutdown()
		ctrl.queue.ShutDown()
	})
	require.True(f.t, cache.WaitForCacheSync(ctx.Done(), ctrl.synced...))
	ctrl.sweep() // as Run does
	f.client.ClearActions()
	return ctx
}

func (f *fixture) mutations() []k8stesting.Action {
	var out []k8stesting.Action
	for _, a := range f.client.Actions() {
		switch a.GetVerb() {
		case "get", "list", "watch":
		default:
			out = append(out, a)
		}
	}
	return out
}

func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func describe(actions []k8stesting.Action) []string {
	var out []string
	for _, a := range actions {
		s := a.GetVerb() + " " + a.GetResource().Resource
		switch a := a.(type) {
		case k8stesting.DeleteAction:
			s += " " + a.GetName()
		case k8stesting.PatchAction:
			s += " " + a.GetName()
		}
		out = append(out, s)
	}
	return out
}

func node(name, hostname string, ready v1.ConditionStatus, since time.Time) *v1.Node {
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), Labels: map[string]string{v1.LabelHostname: hostname}},
		Status: v1.NodeStatus{Conditions: []v1.NodeCondition{
			{Type: v1.NodeReady, Status: ready, LastTransitionTime: metav1.NewTime(since)},
		}},
	}
}

func class(name string, annotations map[string]string) *storagev1.StorageClass {
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}, Provisioner: "kubernetes.io/no-provisioner"}
}

var optIn = map[string]string{policy.AnnFailover: policy.FailoverEnabled}

func statefulSet(name string, annotations map[string]string) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), Annotations: annotations}}
}

func pod(set *appsv1.StatefulSet, ordinal int, nodeName string, ready bool) *v1.Pod {
	name := set.Name + "-" + string(rune('0'+ordinal))
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name, UID: types.UID("uid-" + name),
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: set.Name, UID: set.UID, Controller: ptr.To(true)}},
		},
		Spec: v1.PodSpec{NodeName: nodeName, Volumes: []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{
			PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "data-" + name}}}}},
		Status: v1.PodStatus{Phase: v1.PodRunning},
	}
	if ready {
		p.Status.Conditions = []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue}}
	}
	return p
}

// boundClaim returns the claim of a pod and a local PV pinned to hostname,
// bound to each other.
func boundClaim(p *v1.Pod, className, hostname string) (*v1.PersistentVolumeClaim, *v1.PersistentVolume) {
	claimName := p.Spec.Volumes[0].PersistentVolumeClaim.ClaimName
	pvName := "pv-" + claimName
	pvc := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: claimName, UID: types.UID("uid-" + claimName)},
		Spec:       v1.PersistentVolumeClaimSpec{StorageClassName: ptr.To(className), VolumeName: pvName},
		Status:     v1.PersistentVolumeClaimStatus{Phase: v1.ClaimBound},
	}
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: pvName, UID: types.UID("uid-" + pvName)},
		Spec: v1.PersistentVolumeSpec{
			StorageClassName:              className,
			PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimDelete,
			PersistentVolumeSource:        v1.PersistentVolumeSource{Local: &v1.LocalVolumeSource{Path: "/mnt/" + pvName}},
			ClaimRef:                      &v1.ObjectReference{Namespace: ns, Name: claimName, UID: pvc.UID},
			NodeAffinity: &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
				MatchExpressions: []v1.NodeSelectorRequirement{{Key: v1.LabelHostname, Operator: v1.NodeSelectorOpIn, Values: []string{hostname}}},
			}}}},
		},
		Status: v1.PersistentVolumeStatus{Phase: v1.VolumeBound},
	}
	return pvc, pv
}

// cluster: dead node "dead" (hostname label "host-dead", differs from the
// name) and Ready nodes n1..n3; StatefulSet "pg" with pod 0 on the dead node
// and Ready peers on n1, n2.
func (f *fixture) cluster(classAnnotations, setAnnotations map[string]string, notReadyFor time.Duration) (*appsv1.StatefulSet, *v1.Pod) {
	set := statefulSet("pg", setAnnotations)
	f.add(set, class("local", classAnnotations),
		&v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		node("dead", "host-dead", v1.ConditionUnknown, now.Add(-notReadyFor)))
	for i := 1; i <= 3; i++ {
		name := "n" + string(rune('0'+i))
		f.add(node(name, name, v1.ConditionTrue, now.Add(-time.Hour)))
	}
	victim := pod(set, 0, "dead", true)
	pvc, pv := boundClaim(victim, "local", "host-dead")
	f.add(victim, pvc, pv)
	for i := 1; i <= 2; i++ {
		p := pod(set, i, "n"+string(rune('0'+i)), true)
		c, v := boundClaim(p, "local", "n"+string(rune('0'+i)))
		f.add(p, c, v)
	}
	return set, victim
}

func TestFailoverOrderAndPreconditions(t *testing.T) {
	f := newFixture(t)
	_, victim := f.cluster(optIn, nil, 10*time.Minute)
	ctx := f.start()

	after, err := f.ctrl.syncNode(ctx, "dead")
	require.NoError(t, err)
	assert.Equal(t, f.cfg.RecheckInterval, after, "a dead node stays watched")

	muts := f.mutations()
	assert.Equal(t, []string{
		"patch pods pg-0",                      // phase Started
		"patch persistentvolumes pv-data-pg-0", // Retain + record
		"delete persistentvolumeclaims data-pg-0",
		"patch pods pg-0", // phase ClaimsDeleted
		"delete pods pg-0",
	}, describe(muts))

	assert.Contains(t, string(muts[0].(k8stesting.PatchAction).GetPatch()), `"uid":"uid-pg-0"`, "pod patches carry the UID")
	pvPatch := string(muts[1].(k8stesting.PatchAction).GetPatch())
	assert.Contains(t, pvPatch, `"persistentVolumeReclaimPolicy":"Retain"`)
	assert.Contains(t, pvPatch, `"uid":"uid-pv-data-pg-0"`)
	claimDelete := muts[2].(k8stesting.DeleteAction).GetDeleteOptions()
	require.NotNil(t, claimDelete.Preconditions)
	assert.Equal(t, types.UID("uid-data-pg-0"), *claimDelete.Preconditions.UID)
	podDelete := muts[4].(k8stesting.DeleteAction).GetDeleteOptions()
	require.NotNil(t, podDelete.Preconditions)
	assert.Equal(t, victim.UID, *podDelete.Preconditions.UID)
	assert.Equal(t, int64(0), *podDelete.GracePeriodSeconds)

	pv, err := f.client.CoreV1().PersistentVolumes().Get(ctx, "pv-data-pg-0", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, v1.PersistentVolumeReclaimRetain, pv.Spec.PersistentVolumeReclaimPolicy)
	assert.Equal(t, "dead", pv.Annotations[policy.AnnFailedOverFromNode])
	assert.Equal(t, now.Format(time.RFC3339), pv.Annotations[policy.AnnFailedOverAt])
	assert.Equal(t, "db/data-pg-0/uid-data-pg-0", pv.Annotations[policy.AnnFailedOverClaim])
	assert.Equal(t, policy.PVPhaseInProgress, pv.Annotations[policy.AnnFailoverPhase])
	assert.Equal(t, "StatefulSet/db/pg", pv.Annotations[policy.AnnFailoverOwner])
	assert.Equal(t, now.Add(-10*time.Minute).Format(time.RFC3339Nano), pv.Annotations[policy.AnnFailoverNodeNotReadySince])

	events := strings.Join(f.events(), "\n")
	assert.Contains(t, events, policy.ReasonStarted)
	assert.True(t, f.ctrl.isDead("dead"))
}

func TestNotOptedInIsNeverTouched(t *testing.T) {
	f := newFixture(t)
	f.cluster(nil, nil, time.Hour)
	ctx := f.start()
	_, err := f.ctrl.syncNode(ctx, "dead")
	require.NoError(t, err)
	assert.Empty(t, describe(f.mutations()))
	assert.Empty(t, f.events())
}

func TestOwnerOptIn(t *testing.T) {
	f := newFixture(t)
	f.cluster(nil, optIn, time.Hour)
	ctx := f.start()
	_, err := f.ctrl.syncNode(ctx, "dead")
	require.NoError(t, err)
	assert.Contains(t, describe(f.mutations()), "delete persistentvolumeclaims data-pg-0")
}

func TestWaitsForTheThreshold(t *testing.T) {
	f := newFixture(t)
	f.cluster(optIn, nil, 2*time.Minute)
	ctx := f.start()
	after, err := f.ctrl.syncNode(ctx, "dead")
	require.NoError(t, err)
	assert.Empty(t, f.mutations())
	assert.Equal(t, f.cfg.RecheckInterval, after, "recheck sooner than the remaining 3m")

	f.cfg.RecheckInterval = time.Hour
	f.ctrl.cfg.RecheckInterval = time.Hour
	after, err = f.ctrl.syncNode(ctx, "dead")
	require.NoError(t, err)
	assert.Equal(t, 3*time.Minute+time.Second, after, "requeued after the remaining threshold (whole-second timestamps count from the end of the second)")
	assert.False(t, f.ctrl.isDead("dead"))
}

func TestClassThresholdOverride(t *testing.T) {
	f := newFixture(t)
	f.cluster(map[string]string{policy.AnnFailover: policy.FailoverEnabled, policy.AnnFailoverThreshold: "30m"}, nil, 10*time.Minute)
	f.cfg.RecheckInterval = 2 * time.Hour
	ctx := f.start()
	after, err := f.ctrl.syncNode(ctx, "dead")
	require.NoError(t, err)
	assert.Empty(t, f.mutations(), "10m < 30m class threshold")
	assert.Equal(t, 20*time.Minute+time.Second, after)
}

func TestDryRunChangesNothing(t *testing.T) {
	f := newFixture(t)
	f.cluster(optIn, nil, time.Hour)
	f.cfg.DryRun = true
	ctx := f.start()
	before := counterValue(t, ResultDryRun)
	for range 2 {
		_, err := f.ctrl.syncNode(ctx, "dead")
		require.NoError(t, err)
	}
	assert.Empty(t, describe(f.mutations()))
	events := f.events()
	require.Len(t, events, 2, "one event on the owner and one on the pod, reported once")
	assert.Contains(t, events[0], policy.ReasonDryRun)
	assert.Contains(t, events[0], "pv-data-pg-0")
	assert.Equal(t, before+1, counterValue(t, ResultDryRun))
}

func TestResumesAfterCrashWithoutDeletingAClaimTwice(t *testing.T) {
	f := newFixture(t)
	_, victim := f.cluster(optIn, nil, time.Hour)
	// The controller died after deleting the claim: the claim was recreated
	// (new UID) and must not be deleted; the pod is marked.
	victim.Annotations = map[string]string{policy.AnnFailoverPhase: policy.PodPhaseStarted, policy.AnnFailedOverAt: now.Add(-time.Minute).Format(time.RFC3339)}
	for _, o := range f.objects {
		if pvc, ok := o.(*v1.PersistentVolumeClaim); ok && pvc.Name == "data-pg-0" {
			pvc.UID = "uid-recreated"
			pvc.Spec.VolumeName = ""
			pvc.Status.Phase = v1.ClaimPending
		}
	}
	ctx := f.start()
	_, err := f.ctrl.syncNode(ctx, "dead")
	require.NoError(t, err)
	assert.Equal(t, []string{"patch pods pg-0", "delete pods pg-0"}, describe(f.mutations()))
	assert.Empty(t, filter(f.events(), policy.ReasonStarted+" Node"), "no second Started event")
}

func TestResumesAfterCrashBeforeDeletingTheClaim(t *testing.T) {
	f := newFixture(t)
	_, victim := f.cluster(optIn, nil, time.Hour)
	startedAt := now.Add(-time.Minute).Format(time.RFC3339)
	victim.Annotations = map[string]string{policy.AnnFailoverPhase: policy.PodPhaseStarted, policy.AnnFailedOverAt: startedAt}
	ctx := f.start()
	_, err := f.ctrl.syncNode(ctx, "dead")
	require.NoError(t, err)
	assert.Equal(t, []string{
		"patch persistentvolumes pv-data-pg-0", "delete persistentvolumeclaims data-pg-0",
		"patch pods pg-0", "delete pods pg-0",
	}, describe(f.mutations()))
	pv, err := f.client.CoreV1().PersistentVolumes().Get(ctx, "pv-data-pg-0", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, startedAt, pv.Annotations[policy.AnnFailedOverAt], "the start time of the first attempt is kept")
}

func TestHookStopsBetweenSteps(t *testing.T) {
	f := newFixture(t)
	f.cluster(optIn, nil, time.Hour)
	f.cfg.Hooks = &Hooks{AfterStep: func(step Step, _ *v1.Pod) error {
		if step == StepClaimsDeleted {
			return assert.AnError
		}
		return nil
	}}
	ctx := f.start()
	_, err := f.ctrl.syncNode(ctx, "dead")
	require.ErrorIs(t, err, assert.AnError)
	assert.NotContains(t, describe(f.mutations()), "delete pods pg-0")
}

func TestGatesBlock(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(f *fixture)
		gate   policy.Gate
		reason string
	}{
		{name: "no healthy peer", gate: policy.GatePeer, setup: func(f *fixture) {
			for _, o := range f.objects {
				if p, ok := o.(*v1.Pod); ok && p.Name != "pg-0" {
					p.Status.Conditions = nil
				}
			}
		}},
		{name: "paused namespace", gate: policy.GatePaused, reason: "Namespace db", setup: func(f *fixture) {
			for _, o := range f.objects {
				if n, ok := o.(*v1.Namespace); ok {
					n.Annotations = map[string]string{policy.AnnFailoverPaused: "true"}
				}
			}
		}},
		{name: "paused node", gate: policy.GatePaused, reason: "Node dead", setup: func(f *fixture) {
			for _, o := range f.objects {
				if n, ok := o.(*v1.Node); ok && n.Name == "dead" {
					n.Annotations = map[string]string{policy.AnnFailoverPaused: "true"}
				}
			}
		}},
		{name: "paused owner", gate: policy.GatePaused, reason: "StatefulSet db/pg", setup: func(f *fixture) {
			for _, o := range f.objects {
				if s, ok := o.(*appsv1.StatefulSet); ok {
					s.Annotations = map[string]string{policy.AnnFailoverPaused: "true"}
				}
			}
		}},
		{name: "budget spent by another replica", gate: policy.GateBudget, setup: func(f *fixture) {
			for _, o := range f.objects {
				if pv, ok := o.(*v1.PersistentVolume); ok && pv.Name == "pv-data-pg-1" {
					pv.Annotations = map[string]string{
						policy.AnnFailoverPhase: policy.PVPhaseHandedOff, policy.AnnFailoverOwner: "StatefulSet/db/pg",
						policy.AnnFailoverPod: "db/pg-1/uid-old", policy.AnnFailedOverFromNode: "gone",
						policy.AnnFailedOverClaim: "db/data-pg-1/uid-old-claim",
					}
				}
			}
		}},
		{name: "large outage", gate: policy.GateOutage, setup: func(f *fixture) {
			for _, o := range f.objects {
				if n, ok := o.(*v1.Node); ok && n.Name == "n3" {
					n.Status.Conditions[0].Status = v1.ConditionFalse
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.cluster(optIn, nil, time.Hour)
			tc.setup(f)
			ctx := f.start()
			before := blockedValue(t, tc.gate)
			for range 2 {
				after, err := f.ctrl.syncNode(ctx, "dead")
				require.NoError(t, err)
				assert.Equal(t, f.cfg.RecheckInterval, after)
			}
			for _, m := range describe(f.mutations()) {
				assert.NotContains(t, m, "delete", "nothing deleted")
			}
			assert.Equal(t, before+1, blockedValue(t, tc.gate), "counted once while the reason stays the same")
			events := f.events()
			require.NotEmpty(t, events)
			assert.Contains(t, events[0], policy.ReasonSkipped)
			assert.Contains(t, events[0], tc.reason)
		})
	}
}

func TestBudgetAnnotationOverride(t *testing.T) {
	f := newFixture(t)
	f.cluster(optIn, map[string]string{policy.AnnFailoverBudget: "2"}, time.Hour)
	for _, o := range f.objects {
		if pv, ok := o.(*v1.PersistentVolume); ok && pv.Name == "pv-data-pg-1" {
			pv.Annotations = map[string]string{
				policy.AnnFailoverPhase: policy.PVPhaseInProgress, policy.AnnFailoverOwner: "StatefulSet/db/pg",
				policy.AnnFailoverPod: "db/pg-1/uid-old", policy.AnnFailedOverFromNode: "gone",
				policy.AnnFailedOverClaim: "db/data-pg-1/uid-old-claim",
			}
		}
	}
	ctx := f.start()
	_, err := f.ctrl.syncNode(ctx, "dead")
	require.NoError(t, err)
	assert.Contains(t, describe(f.mutations()), "delete pods pg-0")
}

func TestNodeBackAbortsBeforeClaimDeletion(t *testing.T) {
	f := newFixture(t)
	_, victim := f.cluster(optIn, nil, time.Hour)
	victim.Annotations = map[string]string{policy.AnnFailoverPhase: policy.PodPhaseStarted}
	for _, o := range f.objects {
		switch o := o.(type) {
		case *v1.Node:
			if o.Name == "dead" {
				o.Status.Conditions[0].Status = v1.ConditionTrue
			}
		case *v1.PersistentVolume:
			if o.Name == "pv-data-pg-0" {
				o.Annotations = map[string]string{
					policy.AnnFailoverPhase: policy.PVPhaseInProgress, policy.AnnFailoverOwner: "StatefulSet/db/pg",
					policy.AnnFailoverPod: "db/pg-0/uid-pg-0", policy.AnnFailedOverFromNode: "dead",
					policy.AnnFailedOverClaim: "db/data-pg-0/uid-data-pg-0",
				}
			}
		}
	}
	ctx := f.start()
	before := counterValue(t, ResultAborted)
	_, err := f.ctrl.syncNode(ctx, "dead")
	require.NoError(t, err)
	assert.Equal(t, []string{"patch persistentvolumes pv-data-pg-0", "patch pods pg-0"}, describe(f.mutations()))
	pv, err := f.client.CoreV1().PersistentVolumes().Get(ctx, "pv-data-pg-0", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, policy.PVPhaseAborted, pv.Annotations[policy.AnnFailoverPhase])
	p, err := f.client.CoreV1().Pods(ns).Get(ctx, "pg-0", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, policy.PodPhaseAborted, p.Annotations[policy.AnnFailoverPhase])
	assert.Equal(t, before+1, counterValue(t, ResultAborted))
	assert.Contains(t, strings.Join(f.events(), "\n"), policy.ReasonAborted)
}

func TestNodeBackDuringFailoverStops(t *testing.T) {
	f := newFixture(t)
	f.cluster(optIn, nil, time.Hour)
	ctx := f.start()
	// The node comes back right after the first claim is deleted.
	f.ctrl.cfg.Hooks = &Hooks{AfterStep: func(step Step, _ *v1.Pod) error {
		if step == StepClaimDeleted {
			n, err := f.client.CoreV1().Nodes().Get(ctx, "dead", metav1.GetOptions{})
			require.NoError(t, err)
			n.Status.Conditions[0].Status = v1.ConditionTrue
			_, err = f.client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
			require.NoError(t, err)
		}
		return nil
	}}
	after, err := f.ctrl.syncNode(ctx, "dead")
	require.NoError(t, err)
	assert.Equal(t, time.Millisecond, after, "synced again at once to run the abort path")
	muts := describe(f.mutations())
	assert.Contains(t, muts, "delete persistentvolumeclaims data-pg-0")
	assert.NotContains(t, muts, "delete pods pg-0", "the pod is left alone once the node is back")
}

func TestHandOffAndCompletion(t *testing.T) {
	f := newFixture(t)
	set := statefulSet("pg", nil)
	f.add(set, class("local", optIn), node("n1", "n1", v1.ConditionTrue, now.Add(-time.Hour)))
	repl := pod(set, 0, "n1", true) // the replacement, new UID
	repl.UID = "uid-pg-0-new"
	newClaim, newPV := boundClaim(repl, "local", "n1")
	newClaim.UID = "uid-claim-new"
	oldPV := &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "old-pv", UID: "uid-old-pv", Annotations: map[string]string{
		policy.AnnFailoverPhase: policy.PVPhaseInProgress, policy.AnnFailoverOwner: "StatefulSet/db/pg",
		policy.AnnFailoverPod: "db/pg-0/uid-pg-0", policy.AnnFailedOverFromNode: "dead",
		policy.AnnFailedOverClaim: "db/data-pg-0/uid-data-pg-0", policy.AnnFailedOverAt: now.Add(-time.Minute).Format(time.RFC3339),
		policy.AnnFailoverNodeNotReadySince: now.Add(-10 * time.Minute).Format(time.RFC3339Nano),
	}}}
	f.add(repl, newClaim, newPV, oldPV)
	ctx := f.start()
	before := counterValue(t, ResultCompleted)
	histBefore := histogramCount(t)

	// One sync hands the recreated claim off and, since the replacement
	// pod already runs, completes the failover.
	_, err := f.ctrl.syncNode(ctx, "dead")
	require.NoError(t, err)
	assert.Equal(t, []string{
		"patch persistentvolumeclaims data-pg-0", // hand-off annotations
		"patch persistentvolumes old-pv",         // HandedOff
		"patch persistentvolumes old-pv",         // Completed
	}, describe(f.mutations()))
	claim, err := f.client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data-pg-0", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "dead", claim.Annotations[policy.AnnFailedOverFromNode])
	assert.Equal(t, "old-pv", claim.Annotations[policy.AnnFailedOverFromPV])
	assert.Equal(t, now.Add(-time.Minute).Format(time.RFC3339), claim.Annotations[policy.AnnFailedOverAt])
	pv, err := f.client.CoreV1().PersistentVolumes().Get(ctx, "old-pv", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, policy.PVPhaseCompleted, pv.Annotations[policy.AnnFailoverPhase])
	assert.Equal(t, "uid-claim-new", pv.Annotations[policy.AnnFailedOverToClaimUID])
	assert.Equal(t, before+1, counterValue(t, ResultCompleted))
	assert.Equal(t, histBefore+1, histogramCount(t))
	events := strings.Join(f.events(), "\n")
	assert.Contains(t, events, policy.ReasonHandOff)
	assert.Contains(t, events, policy.ReasonCompleted)
}

func TestDeletedNodeCountsAtOnce(t *testing.T) {
	f := newFixture(t)
	f.cluster(optIn, nil, 0)
	var kept []runtime.Object
	for _, o := range f.objects {
		if n, ok := o.(*v1.Node); ok && n.Name == "dead" {
			continue
		}
		kept = append(kept, o)
	}
	f.objects = kept
	ctx := f.start()
	// The hostname of a node deleted before the controller saw it is
	// unknown; the pod's volume is pinned to a host no node has.
	_, err := f.ctrl.syncNode(ctx, "dead")
	require.NoError(t, err)
	assert.Contains(t, describe(f.mutations()), "delete persistentvolumeclaims data-pg-0")
	assert.Contains(t, describe(f.mutations()), "delete pods pg-0")
}

func TestEventHandlersEnqueue(t *testing.T) {
	f := newFixture(t)
	f.cluster(optIn, nil, time.Minute)
	oldPV := &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "old-pv", Annotations: map[string]string{
		policy.AnnFailoverPhase: policy.PVPhaseInProgress, policy.AnnFailedOverFromNode: "gone-node",
		policy.AnnFailedOverClaim: "db/data-x-0/uid-x", policy.AnnFailoverPod: "db/x-0/uid-x-0",
	}}}
	f.add(oldPV)
	f.start()
	// Initial adds: the not-ready node and the node of the active record
	// (and possibly Ready nodes of pods seen before the node cache synced).
	assert.Subset(t, drain(f.ctrl), []string{"dead", "gone-node"})

	f.ctrl.onPod(&v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"}, Spec: v1.PodSpec{NodeName: "n1"}})
	assert.Empty(t, drain(f.ctrl), "a pod on a Ready node is not interesting")
	f.ctrl.onPod(&v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"}, Spec: v1.PodSpec{NodeName: "dead"}})
	assert.Equal(t, []string{"dead"}, drain(f.ctrl))
	f.ctrl.onClaim(&v1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data-x-0"}})
	assert.Equal(t, []string{"gone-node"}, drain(f.ctrl), "a recreated claim wakes the node it failed over from")
	f.ctrl.onNodeUpdate(node("n1", "n1", v1.ConditionTrue, now), node("n1", "n1", v1.ConditionTrue, now))
	assert.Empty(t, drain(f.ctrl))
	f.ctrl.onNodeUpdate(node("n1", "n1", v1.ConditionTrue, now), node("n1", "n1", v1.ConditionUnknown, now))
	assert.Equal(t, []string{"n1"}, drain(f.ctrl))
	f.ctrl.onNodeDelete(cache.DeletedFinalStateUnknown{Key: "n2", Obj: node("n2", "host-2", v1.ConditionUnknown, now)})
	assert.Equal(t, []string{"n2"}, drain(f.ctrl))
	ts, ok := f.ctrl.tombstoneOf("n2")
	require.True(t, ok)
	assert.Equal(t, "host-2", ts.hostname)
}

func TestConfigValidate(t *testing.T) {
	assert.Empty(t, DefaultConfig().Validate())
	bad := DefaultConfig()
	bad.NodeDeadThreshold = -time.Second
	bad.MaxUnreadyFraction = 0
	bad.MaxFailoversPerOwner = 0
	bad.RecheckInterval = 0
	errs := bad.Validate()
	require.Len(t, errs, 4)
	for i, flag := range []string{"--node-dead-threshold", "--max-unready-fraction", "--max-failovers-per-owner", "--recheck-interval"} {
		assert.Contains(t, errs[i].Error(), flag)
	}
	bad = DefaultConfig()
	bad.MaxUnreadyFraction = 1.5
	assert.Len(t, bad.Validate(), 1)
}

func drain(c *Controller) []string {
	var out []string
	for c.queue.Len() > 0 {
		k, _ := c.queue.Get()
		c.queue.Done(k)
		c.queue.Forget(k)
		out = append(out, k)
	}
	return out
}

func filter(events []string, substr string) []string {
	var out []string
	for _, e := range events {
		if strings.Contains(e, substr) {
			out = append(out, e)
		}
	}
	return out
}

func counterValue(t *testing.T, result string) float64 {
	v, err := testutil.GetCounterMetricValue(failoversTotal.WithLabelValues(result))
	require.NoError(t, err)
	return v
}

func blockedValue(t *testing.T, g policy.Gate) float64 {
	v, err := testutil.GetCounterMetricValue(blockedTotal.WithLabelValues(string(g)))
	require.NoError(t, err)
	return v
}

func histogramCount(t *testing.T) uint64 {
	v, err := testutil.GetHistogramMetricCount(replacementSeconds.ObserverMetric)
	require.NoError(t, err)
	return v
}

// strand turns the victim into a pod recreated by its owner while the node
// was dead: unscheduled and Pending, its claim still bound to the old PV.
func strand(f *fixture) {
	for _, o := range f.objects {
		if p, ok := o.(*v1.Pod); ok && p.Name == "pg-0" {
			p.UID = "uid-pg-0-recreated"
			p.Spec.NodeName = ""
			p.Status = v1.PodStatus{Phase: v1.PodPending}
		}
	}
}

func TestStrandedPodFailsOver(t *testing.T) {
	f := newFixture(t)
	f.cluster(optIn, nil, time.Hour)
	strand(f)
	ctx := f.start()
	assert.Contains(t, drain(f.ctrl), "dead")
	_, err := f.ctrl.syncNode(ctx, "dead")
	require.NoError(t, err)
	muts := f.mutations()
	assert.Equal(t, []string{
		"patch pods pg-0", "patch persistentvolumes pv-data-pg-0", "delete persistentvolumeclaims data-pg-0",
		"patch pods pg-0", "delete pods pg-0",
	}, describe(muts))
	podDelete := muts[4].(k8stesting.DeleteAction).GetDeleteOptions()
	assert.Equal(t, types.UID("uid-pg-0-recreated"), *podDelete.Preconditions.UID)
	assert.NotNil(t, podDelete.Preconditions.ResourceVersion, "a stranded pod is deleted only while unchanged (still unscheduled)")
}

func TestStrandedPodOfANodeDeletedBeforeTheControllerStarted(t *testing.T) {
	f := newFixture(t)
	f.cluster(optIn, nil, time.Hour)
	strand(f)
	var kept []runtime.Object
	for _, o := range f.objects {
		if n, ok := o.(*v1.Node); ok && n.Name == "dead" {
			continue
		}
		kept = append(kept, o)
	}
	f.objects = kept
	ctx := f.start()
	// No node has the hostname any more and the node's name is unknown:
	// the key is the hostname (the kubelet's default node name).
	assert.Contains(t, drain(f.ctrl), "host-dead")
	_, err := f.ctrl.syncNode(ctx, "host-dead")
	require.NoError(t, err)
	assert.Contains(t, describe(f.mutations()), "delete persistentvolumeclaims data-pg-0")
	pv, err := f.client.CoreV1().PersistentVolumes().Get(ctx, "pv-data-pg-0", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "host-dead", pv.Annotations[policy.AnnFailedOverFromNode])
}

func TestPendingPodOnAReadyNodesVolumeIsNotStranded(t *testing.T) {
	f := newFixture(t)
	f.cluster(optIn, nil, time.Hour)
	for _, o := range f.objects {
		if p, ok := o.(*v1.Pod); ok && p.Name == "pg-1" {
			p.Spec.NodeName = "" // pinned to n1, which is Ready
			p.Status = v1.PodStatus{Phase: v1.PodPending}
		}
	}
	ctx := f.start()
	drain(f.ctrl)
	p, err := f.ctrl.podLister.Pods(ns).Get("pg-1")
	require.NoError(t, err)
	f.ctrl.enqueueStranded(p)
	assert.Empty(t, drain(f.ctrl), "the volume's node is Ready: not stranded")
	_, err = f.ctrl.syncNode(ctx, "n1")
	require.NoError(t, err)
	assert.Empty(t, describe(f.mutations()))
}
