package storagescore

import (
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/berth-dev/berth/pkg/apis/config"
	schedconfig "k8s.io/kubernetes/pkg/scheduler/apis/config"
)

// point is a shape point scaled to framework scores (0-100).
type point struct{ utilization, score int64 }

// curve is a piecewise-linear utilization→score function.
type curve []point

// newCurve scales args' 0-10 scores to 0-100.
func newCurve(shape []config.UtilizationShapePoint) curve {
	c := make(curve, len(shape))
	for i, p := range shape {
		c[i] = point{utilization: int64(p.Utilization), score: int64(p.Score) * (fwk.MaxNodeScore / schedconfig.MaxCustomPriorityScore)}
	}
	return c
}

// at evaluates the curve at utilization u (percent, clamped to 0-100),
// flat before the first point and after the last.
func (c curve) at(u int64) int64 {
	if u < 0 {
		u = 0
	} else if u > 100 {
		u = 100
	}
	if u <= c[0].utilization {
		return c[0].score
	}
	for i := 1; i < len(c); i++ {
		if u <= c[i].utilization {
			p0, p1 := c[i-1], c[i]
			return p0.score + (p1.score-p0.score)*(u-p0.utilization)/(p1.utilization-p0.utilization)
		}
	}
	return c[len(c)-1].score
}
