package version

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

var (
	buildInfo = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Name:           "berth_build_info",
		Help:           "Berth build information; the value is always 1.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"version", "git_commit", "build_date"})
	registerOnce sync.Once
)

// RegisterMetrics registers berth_build_info in the component's registry.
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(buildInfo)
		buildInfo.WithLabelValues(Version, GitCommit, BuildDate).Set(1)
	})
}
