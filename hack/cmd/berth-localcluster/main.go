// Command berth-localcluster runs the local cluster of hack/localcluster:
// etcd, kube-apiserver, kube-controller-manager, simulated kubelets,
// berth-scheduler and berth-nodefailover as processes on 127.0.0.1.
//
//	berth-localcluster up [--nodes 5] [--node-dead-threshold 20s]
//	berth-localcluster status
//	berth-localcluster node stop|resume <node>
//	berth-localcluster check     # fail if a Berth component was denied anything
//	berth-localcluster down
//
// `make local-up` / `make local-down` build the binaries and run it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/berth-dev/berth/hack/localcluster"
)

func usage() {
	fmt.Fprint(os.Stderr, `usage: berth-localcluster [--dir .local] [--bin bin] <command>

commands:
  up [--nodes N] [--node-dead-threshold D] [--node-monitor-grace-period D]
                           start the cluster and print "export KUBECONFIG=..."
  status                   list the cluster's processes
  node stop|resume <node>  stop (or resume) a simulated node's heartbeats
  check                    fail if berth-scheduler or berth-nodefailover logged "forbidden"
  down                     stop every process of the cluster and remove its state (logs stay)
`)
	os.Exit(2)
}

func main() {
	global := flag.NewFlagSet("berth-localcluster", flag.ExitOnError)
	global.Usage = usage
	dir := global.String("dir", ".local", "state directory")
	bin := global.String("bin", "bin", "directory of the binaries")
	_ = global.Parse(os.Args[1:])
	args := global.Args()
	if len(args) == 0 {
		usage()
	}
	opts := localcluster.Options{Dir: *dir, BinDir: *bin}
	if err := run(opts, args[0], args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "berth-localcluster:", err)
		os.Exit(1)
	}
}

func run(opts localcluster.Options, cmd string, args []string) error {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	switch cmd {
	case "up":
		fs := flag.NewFlagSet("up", flag.ExitOnError)
		fs.IntVar(&opts.Nodes, "nodes", 5, "simulated nodes (node-1 ... node-N)")
		fs.DurationVar(&opts.NodeDeadThreshold, "node-dead-threshold", 20*time.Second, "berth-nodefailover --node-dead-threshold")
		fs.DurationVar(&opts.NodeMonitorGracePeriod, "node-monitor-grace-period", 10*time.Second, "kube-controller-manager --node-monitor-grace-period")
		_ = fs.Parse(args)
		c, err := localcluster.Up(ctx, opts)
		if err != nil {
			return err
		}
		fmt.Printf("\nThe local cluster is up. Use it with:\n\n  export KUBECONFIG=%s\n\nStop a node: bin/berth-localcluster node stop node-2   Tear down: make local-down\n", c.Kubeconfig())
		return nil
	case "down":
		c, err := localcluster.Attach(opts)
		if errors.Is(err, os.ErrNotExist) {
			fmt.Println("no local cluster running")
			return nil
		}
		if err != nil {
			return err
		}
		if err := c.Down(); err != nil {
			return err
		}
		fmt.Println("local cluster stopped; logs kept in", filepath.Join(opts.Dir, "logs"))
		return nil
	case "status":
		c, err := localcluster.Attach(opts)
		if err != nil {
			return err
		}
		for _, p := range c.Procs() {
			state := "running"
			if !localcluster.Alive(p) {
				state = "EXITED"
			}
			fmt.Printf("%-26s pid %-8d %-8s log %s\n", p.Name, p.PID, state, p.Log)
		}
		fmt.Println("export KUBECONFIG=" + c.Kubeconfig())
		return nil
	case "node":
		if len(args) != 2 || (args[0] != "stop" && args[0] != "resume") {
			usage()
		}
		c, err := localcluster.Attach(opts)
		if err != nil {
			return err
		}
		if args[0] == "stop" {
			if err := c.StopNode(ctx, args[1]); err != nil {
				return err
			}
			fmt.Printf("node %s stopped: no more heartbeats until `node resume %s`\n", args[1], args[1])
			return nil
		}
		if err := c.ResumeNode(ctx, args[1]); err != nil {
			return err
		}
		fmt.Printf("node %s resumed\n", args[1])
		return nil
	case "check":
		c, err := localcluster.Attach(opts)
		if err != nil {
			return err
		}
		if err := c.CheckPermissions(); err != nil {
			return err
		}
		fmt.Println("no permission denied to", localcluster.Audited)
		return nil
	default:
		usage()
	}
	return nil
}
