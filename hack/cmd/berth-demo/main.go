// Command berth-demo is `make demo`: it starts the local cluster
// (hack/localcluster), creates a small fleet of nodes with local disks of
// assorted sizes, deploys a 3-replica database-like StatefulSet scheduled by
// berth-scheduler, kills the node of one replica and narrates what Berth
// does: where each replica went and why, the node going NotReady, the
// failover after the (short, demo) threshold, the replacement replica on
// another node with a new claim, and the hand-off record for the database
// operator. It ends with a summary table and tears the cluster down, also
// on failure and on Ctrl-C. The steps are test/e2e/scenario's, which the e2e
// suite asserts.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"

	"github.com/berth-dev/berth/hack/localcluster"
	"github.com/berth-dev/berth/pkg/nodefailover/policy"
	"github.com/berth-dev/berth/test/e2e/scenario"
)

// The fleet: five nodes, seven local disks. Every replica claims 10Gi; the
// tightest fits are node-3's 10Gi, node-5's 11Gi and node-2's 12Gi disks.
var fleet = []scenario.Disk{
	{Node: "node-1", Size: "100Gi"},
	{Node: "node-2", Size: "12Gi"},
	{Node: "node-2", Size: "50Gi"},
	{Node: "node-3", Size: "10Gi"},
	{Node: "node-4", Size: "20Gi"},
	{Node: "node-5", Size: "11Gi"},
	{Node: "node-5", Size: "200Gi"},
}

const (
	replicas = 3
	// victim is the replica whose node dies.
	victim = 1
)

func main() {
	var (
		dir       = flag.String("dir", ".local", "local cluster state directory")
		bin       = flag.String("bin", "bin", "directory of the binaries (make local-build)")
		threshold = flag.Duration("node-dead-threshold", 20*time.Second, "berth-nodefailover --node-dead-threshold for the demo (production default: 5m)")
		grace     = flag.Duration("node-monitor-grace-period", 10*time.Second, "kube-controller-manager --node-monitor-grace-period (upstream default: 50s)")
		keep      = flag.Bool("keep", false, "leave the cluster running at the end (stop it with make local-down)")
	)
	flag.Parse()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	d := &demo{start: time.Now(), out: os.Stdout}
	err := d.run(ctx, localcluster.Options{Dir: *dir, BinDir: *bin, Nodes: 5, NodeDeadThreshold: *threshold, NodeMonitorGracePeriod: *grace}, *keep)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("interrupted")
		}
		fmt.Fprintf(os.Stderr, "\ndemo FAILED: %v\n", err)
		os.Exit(1)
	}
}

type demo struct {
	start time.Time
	out   io.Writer
	mu    sync.Mutex

	cluster *localcluster.Cluster
	client  kubernetes.Interface
	s       *scenario.Scenario

	timings []timing
}

type timing struct {
	what string
	d    time.Duration
}

// say prints a timeline line: seconds since the start, then the message.
func (d *demo) say(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, "[%6.1fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

// detail prints an indented continuation line.
func (d *demo) detail(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, "          %s\n", fmt.Sprintf(format, args...))
}

func (d *demo) heading(title string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, "\n── %s %s\n", title, strings.Repeat("─", max(0, 70-len(title))))
}

func (d *demo) run(ctx context.Context, opts localcluster.Options, keep bool) (err error) {
	d.heading("1. A local cluster from real components")
	d.say("starting etcd, kube-apiserver (RBAC), kube-controller-manager, 5 simulated kubelets,")
	d.detail("berth-scheduler and berth-nodefailover as processes on 127.0.0.1")
	opts.Out = indent{d}
	t := time.Now()
	d.cluster, err = localcluster.Up(ctx, opts)
	if err != nil {
		return err
	}
	d.timings = append(d.timings, timing{"local cluster up", time.Since(t)})
	defer func() {
		// Permissions first: the components' logs are the proof that
		// manifests/ grants enough.
		if permErr := d.cluster.CheckPermissions(); permErr != nil {
			err = errors.Join(err, permErr)
		} else if err == nil {
			d.say("✓ berth-scheduler and berth-nodefailover ran as their ServiceAccounts, bound only to manifests/ RBAC: nothing was forbidden")
		}
		if keep && err == nil {
			fmt.Fprintf(d.out, "\nThe cluster keeps running (--keep):\n  export KUBECONFIG=%s\nStop it with: make local-down\n", d.cluster.Kubeconfig())
			return
		}
		d.say("tearing the local cluster down")
		if downErr := d.cluster.Down(); downErr != nil {
			err = errors.Join(err, downErr)
		}
		if err != nil {
			fmt.Fprintf(d.out, "logs of every component: %s\n", d.cluster.LogDir())
		}
	}()
	d.client, err = kubernetes.NewForConfig(d.cluster.AdminConfig())
	if err != nil {
		return err
	}
	d.s = &scenario.Scenario{Client: d.client, Name: "demo"}

	if err := d.placement(ctx); err != nil {
		return err
	}
	before, err := d.replicas(ctx)
	if err != nil {
		return err
	}
	after, err := d.failover(ctx, before, opts.NodeDeadThreshold)
	if err != nil {
		return err
	}
	d.summary(before, after)
	return nil
}

func (d *demo) placement(ctx context.Context) error {
	d.heading("2. A fleet with local disks of assorted sizes")
	if err := d.s.Install(ctx, fleet); err != nil {
		return err
	}
	d.say("StorageClass %s: no provisioner, WaitForFirstConsumer, annotated %s: %q", d.s.StorageClass(), policy.AnnFailover, policy.FailoverEnabled)
	byNode := map[string][]string{}
	for _, disk := range fleet {
		byNode[disk.Node] = append(byNode[disk.Node], disk.Size)
	}
	for _, node := range d.cluster.Nodes() {
		d.detail("%-7s local PVs: %s", node, strings.Join(byNode[node], ", "))
	}

	d.heading("3. A 3-replica database, placed by berth-scheduler")
	free, err := d.s.FreePVs(ctx)
	if err != nil {
		return err
	}
	if _, err := d.s.CreateStatefulSet(ctx); err != nil {
		return err
	}
	d.say("StatefulSet %s/%s: %d replicas, each claims %s (volumeClaimTemplate \"data\"), schedulerName: %s",
		d.s.Namespace, d.s.Set, replicas, d.s.ClaimSize, scenario.SchedulerName)
	claim := resource.MustParse(d.s.ClaimSize)
	for i := range replicas {
		t := time.Now()
		r, err := d.s.WaitRunning(ctx, i, 2*time.Minute, nil)
		if err != nil {
			return err
		}
		d.timings = append(d.timings, timing{fmt.Sprintf("%s created → Running", r.Pod), time.Since(t)})
		d.say("%s → %s: claim %s bound to PV %s (%s), %.0f%% full", r.Pod, r.Node, r.Claim, r.PV, qty(r.PVSize), r.Utilization())
		d.explain(r, free, claim, nil)
		free = without(free, r.PV)
	}
	return nil
}

// explain says why the replica's volume was the right one: the tightest
// of the free volumes at the time.
func (d *demo) explain(r scenario.Replica, free []v1.PersistentVolume, claim resource.Quantity, excluded map[string]bool) {
	var alts []string
	for _, pv := range free {
		if pv.Name == r.PV || excluded[scenario.PVNode(&pv)] {
			continue
		}
		c := pv.Spec.Capacity[v1.ResourceStorage]
		if c.Cmp(claim) < 0 {
			continue
		}
		alts = append(alts, fmt.Sprintf("%s %s (%.0f%%)", scenario.PVNode(&pv), qty(c), 100*float64(claim.Value())/float64(c.Value())))
	}
	best, ok := scenario.TightestFit(free, claim, excluded)
	switch {
	case ok && best.Name == r.PV:
		d.detail("why: the tightest fit. Other free disks that fit, all looser: %s", orNone(alts))
	case ok:
		bc := best.Spec.Capacity[v1.ResourceStorage]
		d.detail("note: %s on %s (%s) would have fitted tighter", best.Name, scenario.PVNode(&best), qty(bc))
	}
}

func (d *demo) replicas(ctx context.Context) ([]scenario.Replica, error) {
	var out []scenario.Replica
	for i := range replicas {
		r, ok, err := d.s.Replica(ctx, i)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("replica %d is not placed", i)
		}
		out = append(out, r)
	}
	return out, nil
}

func (d *demo) failover(ctx context.Context, before []scenario.Replica, threshold time.Duration) ([]scenario.Replica, error) {
	old := before[victim]
	dead := old.Node
	d.heading("4. A node dies")
	replica := d.followReplica(ctx, victim)
	defer replica()
	free, err := d.s.FreePVs(ctx)
	if err != nil {
		return nil, err
	}
	killed := time.Now()
	if err := d.cluster.StopNode(ctx, dead); err != nil {
		return nil, err
	}
	d.say("✖ %s, home of %s, stops heartbeating (its simulated kubelet goes silent: no Lease renewals, no status)", dead, old.Pod)

	n, err := scenario.WaitNode(ctx, d.client, dead, 3*time.Minute, func(n *v1.Node) bool { return scenario.NotReady(n) && scenario.Unreachable(n) })
	if err != nil {
		return nil, fmt.Errorf("node %s never became NotReady: %w", dead, err)
	}
	notReady := time.Since(killed)
	d.timings = append(d.timings, timing{"node stopped → NotReady", notReady})
	d.say("%s is NotReady after %.0fs (kube-controller-manager's node lifecycle controller: %s), tainted %s",
		dead, notReady.Seconds(), readyReason(n), v1.TaintNodeUnreachable)
	d.detail("%s stays bound to %s on the dead node: without Berth it would be Pending forever once evicted", old.Claim, old.PV)
	d.say("berth-nodefailover waits until %s has been NotReady for --node-dead-threshold=%v (demo; default 5m), then checks its safety gates", dead, threshold)

	d.heading("5. Failover")
	replacement, err := d.s.WaitRunning(ctx, victim, 4*time.Minute, func(r scenario.Replica) bool {
		return r.PodUID != old.PodUID && r.ClaimUID != old.ClaimUID && r.Node != dead
	})
	if err != nil {
		return nil, err
	}
	d.timings = append(d.timings, timing{"node stopped → replacement Running", time.Since(killed)})
	d.say("%s Running again on %s: new claim %s (uid %s…) bound to PV %s (%s), %.0f%% full",
		replacement.Pod, replacement.Node, replacement.Claim, string(replacement.ClaimUID)[:8], replacement.PV, qty(replacement.PVSize), replacement.Utilization())
	d.explain(replacement, free, resource.MustParse(d.s.ClaimSize), map[string]bool{dead: true})

	d.heading("6. The hand-off record for the database operator")
	h, err := d.s.WaitHandOff(ctx, victim, old.PV, time.Minute)
	if err != nil {
		return nil, err
	}
	d.say("new claim %s/%s (empty volume: seed it from a backup or a peer):", d.s.Namespace, replacement.Claim)
	printAnnotations(d, h.ClaimAnnotations)
	d.say("old PV %s on %s (retained, %s; its data is still on the dead node's disk):", h.OldPV, dead, h.OldPVPhase)
	printAnnotations(d, h.OldPVAnnotations)
	evs, err := d.s.BerthEvents(ctx)
	if err != nil {
		return nil, err
	}
	d.say("events (kubectl get events -n %s; PV and node events are in default):", d.s.Namespace)
	seen := map[string]bool{}
	for _, e := range evs {
		key := e.Reason + e.Message
		if seen[key] {
			continue
		}
		seen[key] = true
		d.detail("%-24s %s/%s: %s", e.Reason, strings.ToLower(e.InvolvedObject.Kind), e.InvolvedObject.Name, e.Message)
	}
	after, err := d.replicas(ctx)
	if err != nil {
		return nil, err
	}
	return after, nil
}

func (d *demo) summary(before, after []scenario.Replica) {
	d.heading("Summary")
	w := tabwriter.NewWriter(d.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "REPLICA\tBEFORE: NODE\tPV (SIZE, FULL)\tAFTER: NODE\tPV (SIZE, FULL)\t")
	for i := range before {
		b, a := before[i], after[i]
		change := "unchanged"
		if a.PodUID != b.PodUID {
			change = fmt.Sprintf("%s\t%s (%s, %.0f%%)", a.Node, a.PV, qty(a.PVSize), a.Utilization())
		} else {
			change += "\t"
		}
		fmt.Fprintf(w, "%s\t%s\t%s (%s, %.0f%%)\t%s\t\n", b.Pod, b.Node, b.PV, qty(b.PVSize), b.Utilization(), change)
	}
	_ = w.Flush()
	fmt.Fprintln(d.out)
	w = tabwriter.NewWriter(d.out, 0, 0, 2, ' ', 0)
	for _, t := range d.timings {
		fmt.Fprintf(w, "%s\t%.1fs\t\n", t.what, t.d.Seconds())
	}
	fmt.Fprintf(w, "whole demo\t%.1fs\t\n", time.Since(d.start).Seconds())
	_ = w.Flush()
}

func printAnnotations(d *demo, m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		d.detail("%s: %s", k, m[k])
	}
}

func readyReason(n *v1.Node) string {
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeReady {
			return fmt.Sprintf("Ready=%s, %s", c.Status, c.Reason)
		}
	}
	return "no Ready condition"
}

func without(pvs []v1.PersistentVolume, name string) []v1.PersistentVolume {
	var out []v1.PersistentVolume
	for _, pv := range pvs {
		if pv.Name != name {
			out = append(out, pv)
		}
	}
	return out
}

func qty(q resource.Quantity) string { return q.String() }

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// indent routes the cluster's progress lines into the timeline.
type indent struct{ d *demo }

func (i indent) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		i.d.detail("%s", strings.TrimSpace(line))
	}
	return len(p), nil
}
