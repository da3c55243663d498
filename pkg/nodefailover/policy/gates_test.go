package policy

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestOutageGate(t *testing.T) {
	tests := []struct {
		name           string
		total, unready int
		fraction       float64
		want           bool
	}{
		{name: "one of ten", total: 10, unready: 1, fraction: 0.3, want: true},
		{name: "three of ten is not more than 0.3", total: 10, unready: 3, fraction: 0.3, want: true},
		{name: "four of ten", total: 10, unready: 4, fraction: 0.3, want: false},
		{name: "one of three is more than 0.3", total: 3, unready: 1, fraction: 0.3, want: false},
		{name: "one of three with 0.5", total: 3, unready: 1, fraction: 0.5, want: true},
		{name: "all nodes with fraction 1", total: 4, unready: 4, fraction: 1, want: true},
		{name: "no nodes", total: 0, unready: 0, fraction: 1, want: false},
		{name: "none unready", total: 5, unready: 0, fraction: 0.3, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := OutageGate(tc.total, tc.unready, tc.fraction)
			assert.Equal(t, tc.want, d.Allowed, d.Reason)
			if !tc.want {
				assert.Equal(t, GateOutage, d.Gate)
				assert.NotEmpty(t, d.Reason)
			}
		})
	}
}

func TestCountUnready(t *testing.T) {
	nodes := []*v1.Node{
		nodeWith(v1.ConditionTrue, t0), nodeWith(v1.ConditionFalse, t0),
		nodeWith(v1.ConditionUnknown, t0), nodeWith("", time.Time{}), nodeWith(v1.ConditionTrue, t0),
	}
	total, unready := CountUnready(nodes)
	assert.Equal(t, 5, total)
	assert.Equal(t, 3, unready)
}

func TestBudgetGate(t *testing.T) {
	tests := []struct {
		others, budget int
		want           bool
	}{
		{0, 1, true}, {1, 1, false}, {2, 1, false}, {1, 2, true}, {2, 2, false}, {0, 0, false},
	}
	for _, tc := range tests {
		d := BudgetGate(tc.others, tc.budget)
		assert.Equal(t, tc.want, d.Allowed, "others %d budget %d", tc.others, tc.budget)
		if !tc.want {
			assert.Equal(t, GateBudget, d.Gate)
		}
	}
}

func TestPeerGate(t *testing.T) {
	tests := []struct {
		peers int
		allow bool
		want  bool
	}{
		{0, false, false}, {0, true, true}, {1, false, true}, {2, true, true},
	}
	for _, tc := range tests {
		d := PeerGate(tc.peers, tc.allow)
		assert.Equal(t, tc.want, d.Allowed, "peers %d allow %v", tc.peers, tc.allow)
		if !tc.want {
			assert.Equal(t, GatePeer, d.Gate)
			assert.Contains(t, d.Reason, AnnFailoverWithoutHealthyPeer)
		}
	}
}

func TestPausedGate(t *testing.T) {
	paused := map[string]string{AnnFailoverPaused: "true"}
	tests := []struct {
		name    string
		sources []PauseSource
		want    bool
		reason  string
	}{
		{name: "nothing", want: true},
		{name: "no annotations", sources: []PauseSource{{Kind: "Node", Name: "n1"}, {Kind: "Namespace", Name: "ns"}}, want: true},
		{name: "false", sources: []PauseSource{{Kind: "Node", Name: "n1", Annotations: map[string]string{AnnFailoverPaused: "false"}}}, want: true},
		{name: "node", sources: []PauseSource{{Kind: "Node", Name: "n1", Annotations: paused}}, reason: "Node n1"},
		{name: "namespace", sources: []PauseSource{{Kind: "Node", Name: "n1"}, {Kind: "Namespace", Name: "ns", Annotations: paused}}, reason: "Namespace ns"},
		{name: "owner, any case", sources: []PauseSource{{Kind: "StatefulSet", Name: "ns/db", Annotations: map[string]string{AnnFailoverPaused: " TRUE"}}}, reason: "StatefulSet ns/db"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := PausedGate(tc.sources...)
			assert.Equal(t, tc.want, d.Allowed)
			if !tc.want {
				assert.Equal(t, GatePaused, d.Gate)
				assert.Contains(t, d.Reason, tc.reason)
			}
		})
	}
}

func TestEvaluatePodGates(t *testing.T) {
	paused := []PauseSource{{Kind: "Namespace", Name: "ns", Annotations: map[string]string{AnnFailoverPaused: "true"}}}
	tests := []struct {
		name     string
		in       PodGateInput
		wantGate Gate // "" means allowed
	}{
		{name: "all clear", in: PodGateInput{Budget: 1, ReadyPeers: 2}},
		{name: "paused wins over everything", in: PodGateInput{Paused: paused, Budget: 0, ReadyPeers: 0}, wantGate: GatePaused},
		{name: "budget before peer", in: PodGateInput{OthersInFailover: 1, Budget: 1, ReadyPeers: 0}, wantGate: GateBudget},
		{name: "no peer", in: PodGateInput{Budget: 1, ReadyPeers: 0}, wantGate: GatePeer},
		{name: "no peer allowed by class", in: PodGateInput{Budget: 1, ReadyPeers: 0, AllowWithoutPeer: true}},
		{name: "in progress skips budget and peer", in: PodGateInput{OthersInFailover: 3, Budget: 1, InProgress: true}},
		{name: "in progress still paused", in: PodGateInput{Paused: paused, InProgress: true}, wantGate: GatePaused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := EvaluatePodGates(tc.in)
			assert.Equal(t, tc.wantGate == "", d.Allowed, d.Reason)
			assert.Equal(t, tc.wantGate, d.Gate)
		})
	}
}

func TestOptedIn(t *testing.T) {
	on := map[string]string{AnnFailover: "enabled"}
	tests := []struct {
		name         string
		class, owner map[string]string
		want         bool
	}{
		{name: "neither", want: false},
		{name: "class", class: on, want: true},
		{name: "owner", owner: on, want: true},
		{name: "both", class: on, owner: on, want: true},
		{name: "other value", class: map[string]string{AnnFailover: "true"}, want: false},
		{name: "disabled", class: map[string]string{AnnFailover: "disabled"}, want: false},
		{name: "case and space", owner: map[string]string{AnnFailover: " Enabled "}, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, OptedIn(tc.class, tc.owner))
		})
	}
}

func TestThreshold(t *testing.T) {
	def := 5 * time.Minute
	tests := []struct {
		name    string
		ann     map[string]string
		want    time.Duration
		wantErr bool
	}{
		{name: "absent", want: def},
		{name: "set", ann: map[string]string{AnnFailoverThreshold: "90s"}, want: 90 * time.Second},
		{name: "spaces", ann: map[string]string{AnnFailoverThreshold: " 1h "}, want: time.Hour},
		{name: "garbage", ann: map[string]string{AnnFailoverThreshold: "soon"}, want: def, wantErr: true},
		{name: "negative", ann: map[string]string{AnnFailoverThreshold: "-1m"}, want: def, wantErr: true},
		{name: "zero", ann: map[string]string{AnnFailoverThreshold: "0s"}, want: def, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Threshold(tc.ann, def)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.wantErr, err != nil, "%v", err)
		})
	}
}

func TestBudget(t *testing.T) {
	tests := []struct {
		name    string
		ann     map[string]string
		want    int
		wantErr bool
	}{
		{name: "absent", want: 1},
		{name: "set", ann: map[string]string{AnnFailoverBudget: "2"}, want: 2},
		{name: "zero blocks", ann: map[string]string{AnnFailoverBudget: "0"}, want: 0},
		{name: "negative", ann: map[string]string{AnnFailoverBudget: "-1"}, want: 1, wantErr: true},
		{name: "garbage", ann: map[string]string{AnnFailoverBudget: "many"}, want: 1, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Budget(tc.ann, 1)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.wantErr, err != nil, "%v", err)
		})
	}
}

func TestIsPodReadyAndRunning(t *testing.T) {
	now := metav1.Now()
	pod := func(phase v1.PodPhase, ready v1.ConditionStatus, deleting bool) *v1.Pod {
		p := &v1.Pod{Status: v1.PodStatus{Phase: phase}}
		if ready != "" {
			p.Status.Conditions = []v1.PodCondition{{Type: v1.PodScheduled, Status: v1.ConditionTrue}, {Type: v1.PodReady, Status: ready}}
		}
		if deleting {
			p.DeletionTimestamp = &now
		}
		return p
	}
	assert.True(t, IsPodReady(pod(v1.PodRunning, v1.ConditionTrue, false)))
	assert.False(t, IsPodReady(pod(v1.PodRunning, v1.ConditionFalse, false)))
	assert.False(t, IsPodReady(pod(v1.PodRunning, "", false)))
	assert.False(t, IsPodReady(pod(v1.PodRunning, v1.ConditionTrue, true)))
	assert.True(t, IsPodRunning(pod(v1.PodRunning, "", false)))
	assert.False(t, IsPodRunning(pod(v1.PodPending, "", false)))
	assert.False(t, IsPodRunning(pod(v1.PodRunning, "", true)))
}

func TestPhases(t *testing.T) {
	assert.True(t, PVPhaseActive(PVPhaseInProgress))
	assert.True(t, PVPhaseActive(PVPhaseHandedOff))
	assert.False(t, PVPhaseActive(PVPhaseCompleted))
	assert.False(t, PVPhaseActive(PVPhaseAborted))
	assert.False(t, PVPhaseActive(""))
	assert.True(t, PodPhaseActive(PodPhaseStarted))
	assert.True(t, PodPhaseActive(PodPhaseClaimsDeleted))
	assert.False(t, PodPhaseActive(PodPhaseAborted))
	assert.Equal(t, "StatefulSet/ns/db", OwnerKey("StatefulSet", "ns", "db"))
}
