// Package plugins wires Berth's scheduler plugins into a kube-scheduler
// command. cmd/scheduler and the integration tests both start the scheduler
// through Options, so they exercise the same code path.
package plugins

import (
	"k8s.io/kubernetes/cmd/kube-scheduler/app"

	// Registers LocalVolumeBindingArgs and StorageScoreArgs into the
	// kube-scheduler configuration scheme.
	_ "github.com/berth-dev/berth/pkg/apis/config/scheme"
	"github.com/berth-dev/berth/pkg/plugins/storagescore"
	"github.com/berth-dev/berth/pkg/plugins/volumebinding"
)

// Options returns the out-of-tree registry options that add Berth's plugins
// to a kube-scheduler command.
func Options() []app.Option {
	return []app.Option{
		app.WithPlugin(volumebinding.Name, volumebinding.New),
		app.WithPlugin(storagescore.Name, storagescore.New),
	}
}
