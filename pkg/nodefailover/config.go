package nodefailover

import (
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
)

// Config tunes the controller. DefaultConfig returns the production values.
type Config struct {
	// NodeDeadThreshold is how long a node's Ready condition must have
	// been not True before its pods fail over (--node-dead-threshold); a
	// StorageClass can override it (berth.dev/failover-threshold).
	NodeDeadThreshold time.Duration
	// MaxUnreadyFraction: when more than this share of the nodes is not
	// Ready, nothing fails over (--max-unready-fraction), in (0, 1].
	MaxUnreadyFraction float64
	// MaxFailoversPerOwner is how many replicas of one owner may be in
	// failover at a time (--max-failovers-per-owner); the owner can
	// override it (berth.dev/failover-budget).
	MaxFailoversPerOwner int
	// DryRun logs and emits events but changes nothing (--dry-run).
	DryRun bool
	// RecheckInterval is how often a node that is not Ready (or whose
	// failover is blocked or waiting for its hand-off) is looked at again
	// when no informer event arrives (--recheck-interval).
	RecheckInterval time.Duration
	// Workers is the number of nodes synced in parallel.
	Workers int
	// Hooks are for tests; nil in production.
	Hooks *Hooks
}

// Step names a point in a pod's failover, for Hooks.
type Step string

const (
	// StepPodMarked: the pod carries berth.dev/failover-phase=Started.
	StepPodMarked Step = "PodMarked"
	// StepClaimDeleted: one claim was deleted (called per claim).
	StepClaimDeleted Step = "ClaimDeleted"
	// StepClaimsDeleted: the pod carries phase ClaimsDeleted; it is about
	// to be deleted.
	StepClaimsDeleted Step = "ClaimsDeleted"
	// StepPodDeleted: the pod was deleted.
	StepPodDeleted Step = "PodDeleted"
)

// Hooks let tests interrupt a failover between steps, as a crash would.
type Hooks struct {
	// AfterStep runs after each step; a non-nil error stops the sync there
	// (the node is retried later, as after any error).
	AfterStep func(step Step, pod *v1.Pod) error
}

// DefaultConfig returns the defaults of the flags.
func DefaultConfig() Config {
	return Config{
		NodeDeadThreshold:    5 * time.Minute,
		MaxUnreadyFraction:   0.3,
		MaxFailoversPerOwner: 1,
		RecheckInterval:      30 * time.Second,
		Workers:              2,
	}
}

// Validate checks the settings; the errors name the flags.
func (c Config) Validate() []error {
	var errs []error
	if c.NodeDeadThreshold < 0 {
		errs = append(errs, fmt.Errorf("--node-dead-threshold must not be negative, got %v", c.NodeDeadThreshold))
	}
	if !(c.MaxUnreadyFraction > 0 && c.MaxUnreadyFraction <= 1) {
		errs = append(errs, fmt.Errorf("--max-unready-fraction must be in (0, 1], got %v", c.MaxUnreadyFraction))
	}
	if c.MaxFailoversPerOwner < 1 {
		errs = append(errs, fmt.Errorf("--max-failovers-per-owner must be at least 1, got %d", c.MaxFailoversPerOwner))
	}
	if c.RecheckInterval <= 0 {
		errs = append(errs, fmt.Errorf("--recheck-interval must be positive, got %v", c.RecheckInterval))
	}
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers must be at least 1, got %d", c.Workers))
	}
	return errs
}
