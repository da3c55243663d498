// Package app is the berth-nodefailover command: flags, client set-up,
// leader election, the health and metrics server, and the controller.
package app

import (
	"fmt"
	"net"
	"time"

	"github.com/spf13/pflag"
	cliflag "k8s.io/component-base/cli/flag"
	logsapi "k8s.io/component-base/logs/api/v1"

	"github.com/berth-dev/berth/pkg/nodefailover"
)

// LeaseName is the leader election Lease.
const LeaseName = "berth-nodefailover"

// Options are the command's flags.
type Options struct {
	// Kubeconfig is a kubeconfig path; empty means in-cluster.
	Kubeconfig string
	// KubeAPIQPS and KubeAPIBurst limit the client.
	KubeAPIQPS   float32
	KubeAPIBurst int

	// Controller settings (--node-dead-threshold, ...).
	Controller nodefailover.Config

	// LeaderElect turns leader election on (default true).
	LeaderElect bool
	// LeaderElectNamespace holds the Lease.
	LeaderElectNamespace string
	// LeaderElectLeaseName is the Lease name (default berth-nodefailover).
	LeaderElectLeaseName string
	LeaseDuration        time.Duration
	RenewDeadline        time.Duration
	RetryPeriod          time.Duration

	// BindAddress serves /healthz, /readyz and /metrics; "0" disables.
	BindAddress string

	// Logs configures logging (component-base).
	Logs *logsapi.LoggingConfiguration
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{
		KubeAPIQPS:           20,
		KubeAPIBurst:         30,
		Controller:           nodefailover.DefaultConfig(),
		LeaderElect:          true,
		LeaderElectNamespace: "kube-system",
		LeaderElectLeaseName: LeaseName,
		LeaseDuration:        15 * time.Second,
		RenewDeadline:        10 * time.Second,
		RetryPeriod:          2 * time.Second,
		BindAddress:          ":8080",
		Logs:                 logsapi.NewLoggingConfiguration(),
	}
}

// Flags returns the flags, grouped.
func (o *Options) Flags() cliflag.NamedFlagSets {
	var fss cliflag.NamedFlagSets

	fs := fss.FlagSet("failover")
	c := &o.Controller
	fs.DurationVar(&c.NodeDeadThreshold, "node-dead-threshold", c.NodeDeadThreshold,
		"How long a node's Ready condition must have been not True (from its lastTransitionTime) before its pods fail over. A StorageClass can override it with the annotation berth.dev/failover-threshold. Deleted nodes and not-Ready nodes tainted node.kubernetes.io/out-of-service count at once.")
	fs.Float64Var(&c.MaxUnreadyFraction, "max-unready-fraction", c.MaxUnreadyFraction,
		"When more than this fraction of the nodes is not Ready, nothing fails over (a large outage is more likely a partition than dead machines). In (0, 1].")
	fs.IntVar(&c.MaxFailoversPerOwner, "max-failovers-per-owner", c.MaxFailoversPerOwner,
		"How many replicas of one owner (StatefulSet or operator object) may be in failover at a time; an owner can override it with the annotation berth.dev/failover-budget.")
	fs.BoolVar(&c.DryRun, "dry-run", c.DryRun,
		"Log and emit events (reason BerthFailoverDryRun) for the failovers that would happen, but change nothing.")
	fs.DurationVar(&c.RecheckInterval, "recheck-interval", c.RecheckInterval,
		"How often a not-Ready node, a blocked failover or a pending hand-off is looked at again when no event arrives.")
	fs.IntVar(&c.Workers, "workers", c.Workers, "Nodes synced in parallel.")

	fs = fss.FlagSet("client")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Path to a kubeconfig; empty means the in-cluster configuration.")
	fs.Float32Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS, "QPS of the client talking to the API server.")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst, "Burst of the client talking to the API server.")

	fs = fss.FlagSet("leader election")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect,
		"Run only while holding the Lease, so that several replicas can run for availability and only one acts.")
	fs.StringVar(&o.LeaderElectNamespace, "leader-elect-namespace", o.LeaderElectNamespace, "Namespace of the leader election Lease.")
	fs.StringVar(&o.LeaderElectLeaseName, "leader-elect-lease-name", o.LeaderElectLeaseName, "Name of the leader election Lease.")
	fs.DurationVar(&o.LeaseDuration, "leader-elect-lease-duration", o.LeaseDuration, "How long a non-leader waits after the last renewal before taking the Lease over.")
	fs.DurationVar(&o.RenewDeadline, "leader-elect-renew-deadline", o.RenewDeadline, "How long the leader retries renewing before it gives up leading.")
	fs.DurationVar(&o.RetryPeriod, "leader-elect-retry-period", o.RetryPeriod, "How long to wait between attempts to acquire or renew the Lease.")

	fs = fss.FlagSet("serving")
	fs.StringVar(&o.BindAddress, "bind-address", o.BindAddress,
		"Address (host:port) of the HTTP server for /healthz, /readyz and /metrics; \"0\" disables it.")

	logsapi.AddFlags(o.Logs, fss.FlagSet("logging"))
	return fss
}

// AddFlags adds every flag to fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	for _, f := range o.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
}

// Validate checks the flags; each error names its flag.
func (o *Options) Validate() []error {
	errs := o.Controller.Validate()
	if o.KubeAPIQPS <= 0 {
		errs = append(errs, fmt.Errorf("--kube-api-qps must be positive, got %v", o.KubeAPIQPS))
	}
	if o.KubeAPIBurst <= 0 {
		errs = append(errs, fmt.Errorf("--kube-api-burst must be positive, got %d", o.KubeAPIBurst))
	}
	if o.LeaderElect {
		if o.LeaderElectNamespace == "" {
			errs = append(errs, fmt.Errorf("--leader-elect-namespace must not be empty with --leader-elect"))
		}
		if o.LeaderElectLeaseName == "" {
			errs = append(errs, fmt.Errorf("--leader-elect-lease-name must not be empty with --leader-elect"))
		}
		if o.RetryPeriod <= 0 {
			errs = append(errs, fmt.Errorf("--leader-elect-retry-period must be positive, got %v", o.RetryPeriod))
		}
		if o.RenewDeadline <= o.RetryPeriod {
			errs = append(errs, fmt.Errorf("--leader-elect-renew-deadline (%v) must be longer than --leader-elect-retry-period (%v)", o.RenewDeadline, o.RetryPeriod))
		}
		if o.LeaseDuration <= o.RenewDeadline {
			errs = append(errs, fmt.Errorf("--leader-elect-lease-duration (%v) must be longer than --leader-elect-renew-deadline (%v)", o.LeaseDuration, o.RenewDeadline))
		}
	}
	if o.BindAddress != "0" && o.BindAddress != "" {
		if _, port, err := net.SplitHostPort(o.BindAddress); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("--bind-address must be host:port or \"0\", got %q", o.BindAddress))
		}
	}
	return errs
}
