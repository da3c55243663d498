package nodefailover

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/berth-dev/berth/pkg/nodefailover/policy"
)

// Results of berth_failovers_total.
const (
	// ResultStarted: the gates passed and the controller began deleting a
	// pod's claims (counted once per pod).
	ResultStarted = "started"
	// ResultCompleted: the replacement pod is Running on its new claims.
	ResultCompleted = "completed"
	// ResultAborted: the node came back before the pod was deleted.
	ResultAborted = "aborted"
	// ResultDryRun: --dry-run: the controller would have started.
	ResultDryRun = "dry_run"
)

// Metrics, served on /metrics from legacyregistry.
var (
	failoversTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Name:           "berth_failovers_total",
		Help:           "Pod failovers off dead nodes by result: started, completed (replacement pod Running), aborted (node came back), dry_run.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"result"})
	nodesConsideredDead = metrics.NewGauge(&metrics.GaugeOpts{
		Name:           "berth_nodes_considered_dead",
		Help:           "Nodes the failover controller currently considers dead (deleted, out-of-service, or not Ready for longer than the threshold).",
		StabilityLevel: metrics.ALPHA,
	})
	replacementSeconds = metrics.NewHistogram(&metrics.HistogramOpts{
		Name:           "berth_failover_replacement_seconds",
		Help:           "Time from the node becoming NotReady to the replacement pod Running on a new volume (includes the dead-node threshold).",
		Buckets:        metrics.ExponentialBuckets(1, 2, 14),
		StabilityLevel: metrics.ALPHA,
	})
	blockedTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Name:           "berth_failover_blocked_total",
		Help:           "Failovers held back by a safety gate (outage, budget, peer, paused, node-alive), counted when a pod (or, for outage, a node) becomes blocked or its reason changes.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"gate"})
	registerOnce sync.Once
)

// RegisterMetrics registers the controller's metrics in legacyregistry
// (idempotent; New calls it).
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(failoversTotal, nodesConsideredDead, replacementSeconds, blockedTotal)
	})
}

func countFailover(result string) { failoversTotal.WithLabelValues(result).Inc() }

func countBlocked(g policy.Gate) { blockedTotal.WithLabelValues(string(g)).Inc() }
