package perf

import (
	"k8s.io/component-base/metrics/legacyregistry"
)

// apiWrites returns the kube-apiserver's count of mutating requests
// (apiserver_request_total with verb POST, PUT, PATCH or DELETE) by
// resource[/subresource]. The registry is process-wide and counts every
// control plane the process ran, so callers take differences.
func apiWrites() map[string]float64 {
	out := map[string]float64{}
	families, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		return out
	}
	for _, mf := range families {
		if mf.GetName() != "apiserver_request_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var verb, resource, sub string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "verb":
					verb = l.GetValue()
				case "resource":
					resource = l.GetValue()
				case "subresource":
					sub = l.GetValue()
				}
			}
			switch verb {
			case "POST", "PUT", "PATCH", "DELETE", "APPLY":
			default:
				continue
			}
			if sub != "" {
				resource += "/" + sub
			}
			out[resource] += m.GetCounter().GetValue()
		}
	}
	return out
}

func diffCounts(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}
