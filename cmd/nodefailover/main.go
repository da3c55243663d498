// Command berth-nodefailover is the node failover controller: it fails
// pods over from dead nodes that pin them with local PersistentVolumes.
// See docs/nodefailover.md.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"

	"github.com/berth-dev/berth/cmd/nodefailover/app"
)

func main() {
	os.Exit(cli.Run(app.NewCommand()))
}
