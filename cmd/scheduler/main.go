// Command berth-scheduler is kube-scheduler with Berth's LocalVolumeBinding and
// StorageScore plugins registered. Every kube-scheduler flag works unchanged.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"

	"github.com/berth-dev/berth/pkg/plugins"
	"github.com/berth-dev/berth/pkg/version"
)

func main() {
	command := app.NewSchedulerCommand(plugins.Options()...)
	command.Use = "berth-scheduler"
	honorKubeconfigFlag(command)
	command.Short = "kube-scheduler with Berth's local-volume plugins (" + version.String() + ")"
	version.RegisterMetrics()
	klog.InfoS("Starting berth-scheduler", "version", version.Version, "commit", version.GitCommit, "built", version.BuildDate)
	os.Exit(cli.Run(command))
}
