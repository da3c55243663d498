package policy

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func nodeWith(status v1.ConditionStatus, since time.Time, taints ...v1.Taint) *v1.Node {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour))}}
	if status != "" {
		n.Status.Conditions = []v1.NodeCondition{
			{Type: v1.NodeMemoryPressure, Status: v1.ConditionFalse},
			{Type: v1.NodeReady, Status: status, LastTransitionTime: metav1.NewTime(since)},
		}
	}
	n.Spec.Taints = taints
	return n
}

var outOfService = v1.Taint{Key: v1.TaintNodeOutOfService, Value: "nodeshutdown", Effect: v1.TaintEffectNoExecute}

func TestIsNodeDead(t *testing.T) {
	const threshold = 5 * time.Minute
	tests := []struct {
		name          string
		node          *v1.Node
		now           time.Time
		wantDead      bool
		wantReason    NodeReason
		wantRemaining time.Duration
		wantSince     time.Time
	}{
		{name: "deleted", node: nil, now: t0, wantDead: true, wantReason: NodeDeleted},
		{name: "ready", node: nodeWith(v1.ConditionTrue, t0.Add(-time.Hour)), now: t0, wantReason: NodeReady},
		{name: "ready long ago, out-of-service taint ignored while Ready", node: nodeWith(v1.ConditionTrue, t0.Add(-time.Hour), outOfService), now: t0, wantReason: NodeReady},
		{name: "unknown for less than threshold", node: nodeWith(v1.ConditionUnknown, t0.Add(-2*time.Minute)), now: t0,
			wantReason: NodeNotReadyWaiting, wantRemaining: 3*time.Minute + time.Second, wantSince: t0.Add(-2 * time.Minute)},
		{name: "false for less than threshold", node: nodeWith(v1.ConditionFalse, t0.Add(-time.Second)), now: t0,
			wantReason: NodeNotReadyWaiting, wantRemaining: threshold, wantSince: t0.Add(-time.Second)},
		{name: "whole-second timestamp: threshold reached at the end of that second", node: nodeWith(v1.ConditionUnknown, t0.Add(-threshold)), now: t0,
			wantReason: NodeNotReadyWaiting, wantRemaining: time.Second, wantSince: t0.Add(-threshold)},
		{name: "whole-second timestamp plus one second", node: nodeWith(v1.ConditionUnknown, t0.Add(-threshold-time.Second)), now: t0,
			wantDead: true, wantReason: NodeNotReadyTooLong, wantSince: t0.Add(-threshold - time.Second)},
		{name: "sub-second timestamp: exactly threshold", node: nodeWith(v1.ConditionUnknown, t0.Add(-threshold-time.Millisecond)), now: t0.Add(-time.Millisecond),
			wantDead: true, wantReason: NodeNotReadyTooLong, wantSince: t0.Add(-threshold - time.Millisecond)},
		{name: "false for longer than threshold", node: nodeWith(v1.ConditionFalse, t0.Add(-time.Hour)), now: t0,
			wantDead: true, wantReason: NodeNotReadyTooLong, wantSince: t0.Add(-time.Hour)},
		{name: "out-of-service taint on a not-ready node counts at once", node: nodeWith(v1.ConditionUnknown, t0.Add(-time.Second), outOfService), now: t0,
			wantDead: true, wantReason: NodeOutOfService, wantSince: t0.Add(-time.Second)},
		{name: "transition in the future (clock skew) counts as now", node: nodeWith(v1.ConditionUnknown, t0.Add(time.Hour)), now: t0,
			wantReason: NodeNotReadyWaiting, wantRemaining: threshold, wantSince: t0.Add(time.Hour)},
		{name: "no Ready condition: measured from creation", node: nodeWith("", time.Time{}), now: t0,
			wantDead: true, wantReason: NodeNotReadyTooLong, wantSince: t0.Add(-time.Hour)},
		{name: "no Ready condition on a new node", node: nodeWith("", time.Time{}), now: t0.Add(-58 * time.Minute),
			wantReason: NodeNotReadyWaiting, wantRemaining: 3*time.Minute + time.Second, wantSince: t0.Add(-time.Hour)},
		{name: "zero threshold: any not-ready node is dead", node: nodeWith(v1.ConditionUnknown, t0), now: t0,
			wantDead: true, wantReason: NodeNotReadyTooLong, wantSince: t0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			th := threshold
			if tc.name == "zero threshold: any not-ready node is dead" {
				th = 0
			}
			v := IsNodeDead(tc.node, tc.now, th)
			assert.Equal(t, tc.wantDead, v.Dead, v.Message)
			assert.Equal(t, tc.wantReason, v.Reason)
			assert.Equal(t, tc.wantRemaining, v.Remaining)
			assert.True(t, tc.wantSince.Equal(v.NotReadySince), "NotReadySince %v, want %v", v.NotReadySince, tc.wantSince)
			assert.NotEmpty(t, v.Message)
		})
	}
}

func TestHostname(t *testing.T) {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "ip-10-0-0-1.ec2.internal", Labels: map[string]string{v1.LabelHostname: "ip-10-0-0-1"}}}
	assert.Equal(t, "ip-10-0-0-1", Hostname(n))
	n.Labels = nil
	assert.Equal(t, "ip-10-0-0-1.ec2.internal", Hostname(n))
}
