// Package scheme registers Berth's plugin args into the kube-scheduler scheme.
package scheme
