package volumebinding

import (
	"sync"
	"time"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Metrics are registered in the scheduler's registry (legacyregistry), which
// kube-scheduler serves on /metrics.
var (
	matchingDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Name:           "berth_volume_matching_duration_seconds",
		Help:           "Time LocalVolumeBinding's Filter spends matching a pod's unbound claims to one node's volumes, by result (fit, nofit).",
		Buckets:        metrics.ExponentialBuckets(0.000001, 4, 10),
		StabilityLevel: metrics.ALPHA,
	}, []string{"result"})
	preBindDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Name:           "berth_prebind_wait_duration_seconds",
		Help:           "Time from PreBind's first API write until every bind of the pod was complete (result bound) or binding was abandoned (result failed).",
		Buckets:        metrics.ExponentialBuckets(0.001, 2, 18),
		StabilityLevel: metrics.ALPHA,
	}, []string{"result"})
	bindReverts = metrics.NewCounterVec(&metrics.CounterOpts{
		Name:           "berth_bind_reverts_total",
		Help:           "API writes of a failed PreBind considered for revert, by resource and result (reverted, kept: bind completed or object moved on, error).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"resource", "result"})
	unschedulableTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Name:           "berth_unschedulable_total",
		Help:           "Rejections by LocalVolumeBinding, per node evaluated, by reason.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})
	invalidVolumes = metrics.NewCounter(&metrics.CounterOpts{
		Name:           "berth_invalid_volumes_total",
		Help:           "PersistentVolume versions skipped because they cannot be used for scheduling (e.g. malformed NodeAffinity).",
		StabilityLevel: metrics.ALPHA,
	})
	bindConflicts = metrics.NewCounterVec(&metrics.CounterOpts{
		Name:           "berth_bind_conflicts_total",
		Help:           "Conflicts met while PreBind completed a bind (bindMode Direct), by step: the PV controller wrote the same object first, or the cached copy was stale. Each is retried on a fresh read.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"step"})
	registerOnce sync.Once
)

func registerMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(matchingDuration, preBindDuration, bindReverts, unschedulableTotal, invalidVolumes, bindConflicts)
	})
}

func observeMatching(start time.Time, fit bool) {
	result := "fit"
	if !fit {
		result = "nofit"
	}
	matchingDuration.WithLabelValues(result).Observe(time.Since(start).Seconds())
}

func observePreBind(start time.Time, result string) {
	preBindDuration.WithLabelValues(result).Observe(time.Since(start).Seconds())
}

func countUnschedulable(reason string) {
	unschedulableTotal.WithLabelValues(reason).Inc()
}

func countBindConflict(step completionStep) {
	bindConflicts.WithLabelValues(string(step)).Inc()
}
