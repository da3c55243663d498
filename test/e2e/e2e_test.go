// Package e2e runs the demo's scenarios (test/e2e/scenario) as tests
// against the cluster of $KUBECONFIG, where berth-scheduler and
// berth-nodefailover must already run: the local cluster (make e2e) or a
// kind cluster with the image and manifests/ (make e2e-kind).
//
// Environment:
//
//	KUBECONFIG                 the cluster; without it every test is skipped
//	BERTH_E2E_STOP_NODE        command that kills a node's heartbeats, "{node}"
//	BERTH_E2E_RESUME_NODE      is replaced by the node name (make e2e: the local
//	                           cluster's `node stop|resume`; kind: docker stop|start);
//	                           required by the failover test
//	BERTH_E2E_FAILOVER_THRESHOLD  berth.dev/failover-threshold on the test classes
//	                           (default 20s), so that failover does not wait 5m
//	BERTH_E2E_LOCAL_PATH       spec.local.path of the PVs (default /tmp; must exist
//	                           on real nodes)
//
// Tests run one after another (a stopped node affects the whole cluster)
// and clean up after themselves, resuming any node they stopped.
package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/berth-dev/berth/pkg/nodefailover/policy"
	"github.com/berth-dev/berth/test/e2e/scenario"
)

// Timeouts: generous enough for kind (node-monitor-grace-period 50s there).
const (
	placementTimeout = 2 * time.Minute
	notReadyTimeout  = 3 * time.Minute
	failoverTimeout  = 5 * time.Minute
)

func client(t *testing.T) kubernetes.Interface {
	t.Helper()
	path := os.Getenv("KUBECONFIG")
	if path == "" {
		t.Skip("KUBECONFIG is not set: the e2e suite runs against an existing cluster with Berth installed (make e2e brings up the local cluster and sets it)")
	}
	config, err := clientcmd.BuildConfigFromFlags("", path)
	require.NoError(t, err)
	c, err := kubernetes.NewForConfig(config)
	require.NoError(t, err)
	return c
}

func newScenario(t *testing.T, c kubernetes.Interface, prefix string) *scenario.Scenario {
	t.Helper()
	threshold := os.Getenv("BERTH_E2E_FAILOVER_THRESHOLD")
	if threshold == "" {
		threshold = "20s"
	}
	s := &scenario.Scenario{
		Client:           c,
		Name:             fmt.Sprintf("e2e-%s-%04x", prefix, rand.IntN(1<<16)),
		ClassAnnotations: map[string]string{policy.AnnFailoverThreshold: threshold},
		LocalPath:        os.Getenv("BERTH_E2E_LOCAL_PATH"),
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Cleanup(ctx); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
	return s
}

func nodes(t *testing.T, c kubernetes.Interface, want int) []string {
	t.Helper()
	list, err := scenario.SchedulableNodes(t.Context(), c)
	require.NoError(t, err)
	if len(list) < want {
		t.Fatalf("need %d schedulable Ready nodes, the cluster has %d", want, len(list))
	}
	var names []string
	for _, n := range list[:want] {
		names = append(names, n.Name)
	}
	return names
}

// TestTightestFit: three replicas each get the smallest free local volume
// that fits, across nodes (kubernetes#83323: the in-tree scheduler takes
// any fitting one).
func TestTightestFit(t *testing.T) {
	c := client(t)
	n := nodes(t, c, 3)
	s := newScenario(t, c, "fit")
	ctx := t.Context()
	require.NoError(t, s.Install(ctx, []scenario.Disk{
		{Node: n[0], Size: "100Gi"}, {Node: n[0], Size: "12Gi"},
		{Node: n[1], Size: "11Gi"}, {Node: n[1], Size: "50Gi"},
		{Node: n[2], Size: "10Gi"}, {Node: n[2], Size: "9Gi"},
	}))
	free, err := s.FreePVs(ctx)
	require.NoError(t, err)
	_, err = s.CreateStatefulSet(ctx)
	require.NoError(t, err)

	claim := resource.MustParse("10Gi")
	want := []string{s.PVName(n[2], 1), s.PVName(n[1], 1), s.PVName(n[0], 2)} // 10Gi, 11Gi, 12Gi
	for i := range 3 {
		r, err := s.WaitRunning(ctx, i, placementTimeout, nil)
		require.NoError(t, err)
		best, ok := scenario.TightestFit(free, claim, nil)
		require.True(t, ok)
		assert.Equal(t, want[i], best.Name, "test bug: the expected tightest PV")
		assert.Equal(t, want[i], r.PV, "replica %s: want the tightest free PV %s, got %s (%s)", r.Pod, want[i], r.PV, r.PVSize.String())
		assert.Equal(t, scenario.PVNode(&best), r.Node)
		free = remove(free, r.PV)
	}
}

// TestFailover: the node of one replica dies; after the threshold
// berth-nodefailover deletes its claim and pod, the StatefulSet recreates
// them, berth-scheduler places the replica on the tightest volume of
// another node, and the hand-off is recorded. A second StatefulSet on the
// same node whose class does not opt in is left alone.
func TestFailover(t *testing.T) {
	c := client(t)
	stop, resume := os.Getenv("BERTH_E2E_STOP_NODE"), os.Getenv("BERTH_E2E_RESUME_NODE")
	if stop == "" || resume == "" {
		// Only a missing KUBECONFIG skips; a cluster without a way to
		// kill a node cannot pass the suite.
		t.Fatal("set BERTH_E2E_STOP_NODE and BERTH_E2E_RESUME_NODE to shell commands that stop and restart a node's kubelet, " +
			"with {node} for the node name (kind: 'docker stop {node}' / 'docker start {node}'; make e2e and make e2e-kind set them)")
	}
	n := nodes(t, c, 4)
	ctx := t.Context()
	s := newScenario(t, c, "failover")
	require.NoError(t, s.Install(ctx, []scenario.Disk{
		{Node: n[0], Size: "10Gi"}, {Node: n[0], Size: "50Gi"},
		{Node: n[1], Size: "11Gi"},
		{Node: n[2], Size: "12Gi"},
		{Node: n[3], Size: "20Gi"},
	}))
	_, err := s.CreateStatefulSet(ctx)
	require.NoError(t, err)
	var before []scenario.Replica
	for i := range 3 {
		r, err := s.WaitRunning(ctx, i, placementTimeout, nil)
		require.NoError(t, err)
		before = append(before, r)
	}
	victim := before[1]
	require.Equal(t, n[1], victim.Node, "db-1 should sit on the 11Gi volume")

	// The control: one replica on the same node, its class not opted in
	// (and allowed to fail over without a healthy peer, so that only the
	// opt-in keeps it in place).
	ctl := newScenario(t, c, "noopt")
	ctl.NoOptIn, ctl.Replicas = true, 1
	ctl.ClassAnnotations[policy.AnnFailoverWithoutHealthyPeer] = "true"
	require.NoError(t, ctl.Install(ctx, []scenario.Disk{{Node: victim.Node, Size: "10Gi"}}))
	_, err = ctl.CreateStatefulSet(ctx)
	require.NoError(t, err)
	ctlBefore, err := ctl.WaitRunning(ctx, 0, placementTimeout, nil)
	require.NoError(t, err)
	require.Equal(t, victim.Node, ctlBefore.Node)

	free, err := s.FreePVs(ctx)
	require.NoError(t, err)
	runNodeCommand(t, stop, victim.Node)
	t.Cleanup(func() {
		runNodeCommand(t, resume, victim.Node)
		_, err := scenario.WaitNode(context.Background(), c, victim.Node, notReadyTimeout, scenario.NodeReady)
		if err != nil {
			t.Errorf("node %s did not come back after resume: %v", victim.Node, err)
		}
	})
	_, err = scenario.WaitNode(ctx, c, victim.Node, notReadyTimeout, func(n *v1.Node) bool {
		return scenario.NotReady(n) && scenario.Unreachable(n)
	})
	require.NoError(t, err, "node %s should become NotReady and unreachable", victim.Node)

	after, err := s.WaitRunning(ctx, 1, failoverTimeout, func(r scenario.Replica) bool {
		return r.PodUID != victim.PodUID && r.ClaimUID != victim.ClaimUID && r.Node != victim.Node
	})
	require.NoError(t, err)
	want, ok := scenario.TightestFit(free, resource.MustParse("10Gi"), map[string]bool{victim.Node: true})
	require.True(t, ok)
	assert.Equal(t, want.Name, after.PV, "the replacement gets the tightest free volume off the dead node")
	assert.Equal(t, n[3], after.Node)

	h, err := s.WaitHandOff(ctx, 1, victim.PV, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, victim.Node, h.ClaimAnnotations[policy.AnnFailedOverFromNode])
	assert.Equal(t, victim.PV, h.ClaimAnnotations[policy.AnnFailedOverFromPV])
	assert.NotEmpty(t, h.ClaimAnnotations[policy.AnnFailedOverAt])
	assert.Equal(t, string(after.ClaimUID), h.OldPVAnnotations[policy.AnnFailedOverToClaimUID])
	assert.True(t, strings.HasSuffix(h.OldPVAnnotations[policy.AnnFailedOverClaim], "/"+string(victim.ClaimUID)), h.OldPVAnnotations[policy.AnnFailedOverClaim])
	assert.Equal(t, "StatefulSet/"+s.Namespace+"/"+s.Set, h.OldPVAnnotations[policy.AnnFailoverOwner])
	pv, err := c.CoreV1().PersistentVolumes().Get(ctx, victim.PV, metav1.GetOptions{})
	require.NoError(t, err, "the old volume is retained")
	assert.Equal(t, v1.PersistentVolumeReclaimRetain, pv.Spec.PersistentVolumeReclaimPolicy)

	events, err := s.BerthEvents(ctx)
	require.NoError(t, err)
	reasons := map[string]bool{}
	for _, e := range events {
		reasons[e.Reason] = true
	}
	for _, r := range []string{policy.ReasonStarted, policy.ReasonHandOff, policy.ReasonCompleted} {
		assert.True(t, reasons[r], "event %s recorded (have %v)", r, reasons)
	}
	for _, i := range []int{0, 2} {
		r, ok, err := s.Replica(ctx, i)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, before[i].PodUID, r.PodUID, "replica %d untouched", i)
		assert.Equal(t, before[i].ClaimUID, r.ClaimUID, "replica %d's claim untouched", i)
	}

	// By now the opted-out replica has been on the dead node for longer
	// than the threshold too: it must still be there, claim and all.
	r, _, err := ctl.Replica(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, ctlBefore.PodUID, r.PodUID, "a pod whose class does not opt in is not failed over")
	assert.Equal(t, ctlBefore.ClaimUID, r.ClaimUID, "its claim is not deleted")
	assert.Equal(t, victim.Node, r.Node)
}

func runNodeCommand(t *testing.T, template, node string) {
	t.Helper()
	cmd := strings.ReplaceAll(template, "{node}", node)
	out, err := exec.Command("sh", "-c", cmd).CombinedOutput()
	require.NoError(t, err, "%s: %s", cmd, out)
	t.Logf("%s: %s", cmd, strings.TrimSpace(string(out)))
}

func remove(pvs []v1.PersistentVolume, name string) []v1.PersistentVolume {
	var out []v1.PersistentVolume
	for _, pv := range pvs {
		if pv.Name != name {
			out = append(out, pv)
		}
	}
	return out
}
