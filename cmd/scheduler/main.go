// Command berth-scheduler is kube-scheduler with Berth's LocalVolumeBinding and
// StorageScore plugins registered. Every kube-scheduler flag works unchanged.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"

	"github.com/berth-dev/berth/pkg/plugins"
)

func main() {
	command := app.NewSchedulerCommand(plugins.Options()...)
	command.Use = "berth-scheduler"
	os.Exit(cli.Run(command))
}
