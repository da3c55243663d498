package perf

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"k8s.io/kubernetes/pkg/features"

	"github.com/berth-dev/berth/test/integration/framework"
)

// Mode is what a run schedules with.
type Mode string

const (
	// ModeBerth is Berth's profile: manifests/config/scheduler-config.yaml.
	ModeBerth Mode = "berth"
	// ModeInTree is the in-tree default profile, with VolumeBinding's
	// scoring shape set to prefer the tightest fit.
	ModeInTree Mode = "in-tree"
	// ModeLimit is Berth's profile on pods whose claims are already Bound
	// (the PV controller bound them before the pods were created): what the
	// API server and the rest of the scheduler allow.
	ModeLimit Mode = "limit"
	// ModeBerthPVController is Berth's profile with bindMode PVController:
	// PreBind writes the claimRef and waits for the PV controller, as the
	// in-tree plugin does. It shows what bindMode Direct gains; not in
	// Modes (ask for it in BERTH_PERF_MODES).
	ModeBerthPVController Mode = "berth-pvcontroller"
)

// Modes lists every mode, in report order.
var Modes = []Mode{ModeBerth, ModeInTree, ModeLimit}

// Client and scheduler rate limits, the same in every run.
const (
	clientQPS       = 5000
	clientBurst     = 5000
	createWorkers   = 32
	namespace       = "perf"
	storageClass    = "local-perf"
	cpuLabel        = "component"
	pvResyncPeriod  = 15 * time.Second // kube-controller-manager's default
	prebindTimeout  = 15 * time.Minute
	heapSampleEvery = 50 * time.Millisecond
)

// InTreeShape is the VolumeBinding scoring shape of the in-tree run:
// fuller volumes score higher, as Berth's StorageScore default.
var InTreeShape = []map[string]any{{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}}

// Options describe one run.
type Options struct {
	Fixture Fixture
	Mode    Mode
	// Timeout bounds the measured part (from the first pod creation until
	// every pod is done); a run that hits it is reported as timed out with
	// the pods done so far.
	Timeout time.Duration
	// OutDir receives <fixture>-<mode>.json and .cpu.pprof; empty: none.
	OutDir string
	// Logf reports progress (e.g. t.Logf); nil: silent.
	Logf func(format string, args ...any)
}

// Binding is a claim's PV, its capacity and the claim's request (bytes).
type Binding struct {
	PV       string `json:"pv"`
	Capacity int64  `json:"capacity"`
	Request  int64  `json:"request"`
}

// Latency percentiles in seconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Result is one run's measurements (written as JSON).
type Result struct {
	Fixture       Fixture   `json:"fixture"`
	FixtureName   string    `json:"fixtureName"`
	Mode          Mode      `json:"mode"`
	SchedulerName string    `json:"schedulerName"`
	Description   string    `json:"description"`
	Started       time.Time `json:"started"`
	Machine       Machine   `json:"machine"`
	// StorageCapacityScoring is the feature gate as the scheduler saw it
	// (the in-tree VolumeBinding scores volume fit only with it on).
	StorageCapacityScoring bool `json:"storageCapacityScoring"`

	SetupSeconds float64 `json:"setupSeconds"`
	// PrebindSeconds (limit run): how long the PV controller took to bind
	// the pre-bound pairs before any pod existed, and its rate.
	PrebindSeconds         float64 `json:"prebindSeconds,omitempty"`
	PrebindClaimsPerSecond float64 `json:"prebindClaimsPerSecond,omitempty"`

	Pods           int     `json:"pods"`
	PodsDone       int     `json:"podsDone"`
	PodsBound      int     `json:"podsBound"`
	ClaimsBound    int     `json:"claimsBound"`
	TimedOut       bool    `json:"timedOut"`
	TimeoutSeconds float64 `json:"timeoutSeconds"`
	// CreateSeconds is how long creating all pods took.
	CreateSeconds float64 `json:"createSeconds"`
	// DurationSeconds runs from just before the first pod creation until
	// the last pod was done (or the timeout).
	DurationSeconds float64 `json:"durationSeconds"`
	PodsPerSecond   float64 `json:"podsPerSecond"`
	// Latency: pod creation (just before the Create call) until the pod is
	// bound to a node and all its claims are Bound, over the pods done.
	Latency Latency `json:"latencySeconds"`
	// ToClaimRef is pod creation → the scheduler's claimRef write on the
	// PV (seen in a watch), and ClaimRefToBound that write → the claim
	// Bound by the PV controller, per claim (berth and in-tree runs): where
	// the latency goes.
	ToClaimRef      Latency `json:"toClaimRefSeconds"`
	ClaimRefToBound Latency `json:"claimRefToBoundSeconds"`

	// Waste: Σ (PV capacity − claim request) over the claims bound in the
	// run.
	WastedBytes    int64   `json:"wastedBytes"`
	WastedGiB      float64 `json:"wastedGiB"`
	RequestedBytes int64   `json:"requestedBytes"`
	// Bindings maps each bound claim to its PV, to compare waste on the
	// same claims when a run stopped early.
	Bindings map[string]Binding `json:"bindings"`
	// Misplaced counts claims bound to a PV not on their pod's node (must
	// be 0).
	Misplaced int `json:"misplaced"`

	// CPUSeconds is CPU time during the measured window by component, from
	// a CPU profile of the process whose goroutines carry a pprof label
	// "component" (inherited by every goroutine a component starts):
	// scheduler, pv-controller, control-plane (kube-apiserver, etcd,
	// serviceaccount and namespace controllers), driver (pod creation,
	// watches), and "" for unlabelled (Go runtime: GC workers, timers).
	CPUSeconds          map[string]float64 `json:"cpuSeconds"`
	SchedulerCPUSeconds float64            `json:"schedulerCPUSeconds"`
	// ProcessCPUSeconds is getrusage(RUSAGE_SELF) user+sys over the window.
	ProcessCPUSeconds float64 `json:"processCPUSeconds"`
	// Heap: runtime/metrics /memory/classes/heap/objects:bytes of the whole
	// process (all components), sampled every 50ms; baseline just before
	// the first pod creation (scheduler started and synced), peak during
	// the window.
	HeapBaselineBytes uint64 `json:"heapBaselineBytes"`
	HeapPeakBytes     uint64 `json:"heapPeakBytes"`

	// APIWrites counts the kube-apiserver's mutating requests during the
	// window by resource[/subresource] (apiserver_request_total), from
	// every client: pod creations, the scheduler, the PV controller, events.
	APIWrites      map[string]float64 `json:"apiWrites"`
	APIWritesTotal float64            `json:"apiWritesTotal"`

	// Timeline are the seconds (from the first pod creation) at which each
	// done pod was done, sorted.
	Timeline   []float64 `json:"timeline"`
	CPUProfile string    `json:"cpuProfile,omitempty"`
	Error      string    `json:"error,omitempty"`
}

func (o Options) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

// Run runs one mode on a fresh control plane (etcd, kube-apiserver, PV
// controller) and a fresh fixture, and returns its measurements. The result
// is also written to OutDir. An error means the run could not be measured
// at all; a timeout is not an error.
func Run(ctx context.Context, o Options) (res *Result, err error) {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	res = &Result{
		Fixture: o.Fixture, FixtureName: o.Fixture.String(), Mode: o.Mode,
		Started: time.Now().UTC(), Machine: machineInfo(),
		Pods: o.Fixture.Pods, TimeoutSeconds: o.Timeout.Seconds(),
	}
	defer func() {
		if err != nil {
			res.Error = err.Error()
		}
		if o.OutDir != "" {
			if werr := writeJSON(filepath.Join(o.OutDir, resultFile(o.Fixture, o.Mode)), res); werr != nil && err == nil {
				err = werr
			}
		}
	}()
	p, err := newPlan(o.Fixture, o.Mode == ModeLimit)
	if err != nil {
		return res, err
	}
	setupStart := time.Now()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var cp *framework.ControlPlane
	pprof.Do(ctx, pprof.Labels(cpuLabel, "control-plane"), func(ctx context.Context) {
		cp, err = framework.StartControlPlane(ctx, framework.ControlPlaneOptions{})
	})
	if err != nil {
		return res, fmt.Errorf("starting the control plane: %w", err)
	}
	defer cp.Stop()

	// The PV controller with kube-controller-manager's resync period (the
	// harness default of 1s would re-sync every PV and claim every second)
	// and the harness's client (QPS 1000, burst 10000).
	cfg := framework.DefaultControllerConfig()
	cfg.PVSyncPeriod = pvResyncPeriod
	var ctrls *framework.Controllers
	pprof.Do(ctx, pprof.Labels(cpuLabel, "pv-controller"), func(ctx context.Context) {
		ctrls, err = cp.RunControllers(ctx, cfg, framework.PersistentVolumeBinder)
	})
	if err != nil {
		return res, fmt.Errorf("starting the PV controller: %w", err)
	}
	defer ctrls.Stop()

	// Everything the driver does carries the "driver" label.
	var out *Result
	pprof.Do(ctx, pprof.Labels(cpuLabel, "driver"), func(ctx context.Context) {
		out, err = drive(ctx, o, cp, p, res, setupStart)
	})
	return out, err
}

func resultFile(f Fixture, m Mode) string { return fmt.Sprintf("%s-%s.json", f, m) }

func drive(ctx context.Context, o Options, cp *framework.ControlPlane, p *plan, res *Result, setupStart time.Time) (*Result, error) {
	driverCfg := cp.RESTConfig("perf-driver")
	driverCfg.QPS, driverCfg.Burst = clientQPS, clientBurst
	// Its own HTTP/2 connection: transports are shared between configs
	// with equal TLS settings, and a distinct NextProtos makes this one
	// different from the controllers'.
	driverCfg.NextProtos = []string{"h2", "http/1.1"}
	client, err := kubernetes.NewForConfig(driverCfg)
	if err != nil {
		return res, err
	}
	if err := createNamespace(ctx, client); err != nil {
		return res, err
	}
	if _, err := client.StorageV1().StorageClasses().Create(ctx, framework.MakeStorageClass(framework.StorageClassOptions{Name: storageClass}), metav1.CreateOptions{}); err != nil {
		return res, fmt.Errorf("creating the StorageClass: %w", err)
	}
	start := time.Now()
	if err := createNodes(ctx, client, p); err != nil {
		return res, err
	}
	o.logf("%s/%s: %d nodes in %v", p.f, o.Mode, len(p.nodes), time.Since(start).Round(time.Millisecond))
	rec, err := newRecorder(client, namespace, p)
	if err != nil {
		return res, err
	}
	defer rec.shutdown()

	createClaims := func() error {
		return parallel(ctx, len(p.claims), func(ctx context.Context, i int) error {
			c := p.claims[i]
			_, err := client.CoreV1().PersistentVolumeClaims(namespace).Create(ctx, framework.MakePVC(namespace, framework.PVCOptions{
				Name: c.name, StorageClass: storageClass, Request: fmt.Sprintf("%dGi", c.request/gi), VolumeName: c.volume,
			}), metav1.CreateOptions{})
			if err != nil {
				return fmt.Errorf("creating claim %s: %w", c.name, err)
			}
			return nil
		})
	}
	// PVs are created and marked Available (what the PV controller would
	// do, one write at a time, for every new PV) so that every run starts
	// with K Available PVs per node. In the limit run they are pre-bound
	// (claimRef by name, as a user would pre-bind).
	start = time.Now()
	if err := parallel(ctx, len(p.pvs), func(ctx context.Context, i int) error {
		pv := p.pvs[i]
		obj := framework.MakeLocalPV(framework.LocalPVOptions{
			Name: pv.name, Hostname: p.nodes[pv.node], StorageClass: storageClass,
			Capacity: fmt.Sprintf("%dGi", pv.capacity/gi),
		})
		if pv.claim != "" {
			obj.Spec.ClaimRef = &v1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: namespace, Name: pv.claim}
		}
		created, err := client.CoreV1().PersistentVolumes().Create(ctx, obj, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("creating PV %s: %w", pv.name, err)
		}
		if created.Status.Phase == v1.VolumeAvailable {
			return nil
		}
		created.Status.Phase = v1.VolumeAvailable
		_, err = client.CoreV1().PersistentVolumes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			err = nil // the PV controller was first
		}
		return err
	}); err != nil {
		return res, fmt.Errorf("creating PVs: %w", err)
	}
	o.logf("%s/%s: %d PVs in %v", p.f, o.Mode, len(p.pvs), time.Since(start).Round(time.Millisecond))
	// Barriers: the PV controller's work queues are FIFO, so once it has
	// handled a sentinel object created last, it has handled every event
	// before it and starts the measured window idle.
	start = time.Now()
	if err := volumeBarrier(ctx, client); err != nil {
		return res, err
	}
	o.logf("%s/%s: PV controller caught up with the PVs after %v", p.f, o.Mode, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	if err := createClaims(); err != nil {
		return res, err
	}
	if o.Mode == ModeLimit {
		select {
		case <-rec.allClaimsDone:
		case <-time.After(prebindTimeout):
			return res, fmt.Errorf("the PV controller did not bind the %d pre-bound claims within %v", len(p.claims), prebindTimeout)
		case <-ctx.Done():
			return res, ctx.Err()
		}
		res.PrebindSeconds = time.Since(start).Seconds()
		res.PrebindClaimsPerSecond = float64(len(p.claims)) / res.PrebindSeconds
		o.logf("%s/%s: PV controller bound %d pre-bound claims in %.1fs (%.0f/s)", p.f, o.Mode, len(p.claims), res.PrebindSeconds, res.PrebindClaimsPerSecond)
	}
	start = time.Now()
	if err := claimBarrier(ctx, client, rec); err != nil {
		return res, err
	}
	o.logf("%s/%s: PV controller caught up with the claims after %v", p.f, o.Mode, time.Since(start).Round(time.Millisecond))

	sched, schedName, desc, err := startScheduler(ctx, cp, o.Mode)
	if err != nil {
		return res, err
	}
	defer sched.Stop()
	res.SchedulerName, res.Description = schedName, desc
	res.StorageCapacityScoring = utilfeature.DefaultFeatureGate.Enabled(features.StorageCapacityScoring)
	res.SetupSeconds = time.Since(setupStart).Seconds()

	// Measured window.
	heap := startHeapSampler()
	var profile bytes.Buffer
	if err := pprof.StartCPUProfile(&profile); err != nil {
		return res, fmt.Errorf("starting the CPU profile: %w", err)
	}
	profiling := true
	defer func() {
		if profiling {
			pprof.StopCPUProfile()
		}
	}()
	cpuBefore := processCPU()
	writesBefore := apiWrites()
	t0 := time.Now()
	var createErrs atomic.Int64
	createDone := make(chan struct{})
	go func() {
		defer close(createDone)
		_ = parallel(ctx, len(p.pods), func(ctx context.Context, i int) error {
			pod := p.pods[i]
			obj := framework.MakePod(namespace, framework.PodOptions{Name: pod.name, SchedulerName: schedName, PVCs: pod.claims})
			rec.markCreated(pod.name, time.Now())
			if _, err := client.CoreV1().Pods(namespace).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
				createErrs.Add(1)
				return err
			}
			return nil
		})
	}()
	select {
	case <-createDone:
	case <-ctx.Done():
	}
	res.CreateSeconds = time.Since(t0).Seconds()
	if n := createErrs.Load(); n > 0 {
		return res, fmt.Errorf("%d pod creations failed", n)
	}
	o.logf("%s/%s: %d pods created in %.2fs", p.f, o.Mode, len(p.pods), res.CreateSeconds)

	deadline := time.NewTimer(o.Timeout - time.Since(t0))
	defer deadline.Stop()
	select {
	case <-rec.allPodsDone:
	case <-deadline.C:
		res.TimedOut = true
	case <-ctx.Done():
		return res, ctx.Err()
	}
	windowEnd := time.Now()
	pprof.StopCPUProfile()
	profiling = false
	res.ProcessCPUSeconds = processCPU() - cpuBefore
	res.APIWrites = diffCounts(writesBefore, apiWrites())
	for _, n := range res.APIWrites {
		res.APIWritesTotal += n
	}
	res.HeapBaselineBytes, res.HeapPeakBytes = heap.stop()

	snap := rec.snapshot()
	res.fill(p, snap, t0, windowEnd)
	byComponent, err := cpuByLabel(profile.Bytes(), cpuLabel)
	if err != nil {
		return res, fmt.Errorf("reading the CPU profile: %w", err)
	}
	res.CPUSeconds = map[string]float64{}
	for k, v := range byComponent {
		if k == "" {
			k = "unlabelled"
		}
		res.CPUSeconds[k] = round3(v)
	}
	res.SchedulerCPUSeconds = res.CPUSeconds["scheduler"]
	if o.OutDir != "" {
		name := fmt.Sprintf("%s-%s.cpu.pprof", p.f, o.Mode)
		if err := os.WriteFile(filepath.Join(o.OutDir, name), profile.Bytes(), 0o644); err != nil {
			return res, err
		}
		res.CPUProfile = name
	}
	o.logf("%s/%s: %s", p.f, o.Mode, res.Summary())
	return res, nil
}

// fill computes the metrics from what the recorder saw.
func (res *Result) fill(p *plan, s snapshot, t0, windowEnd time.Time) {
	res.PodsDone = len(s.completed)
	res.PodsBound = len(s.podBound)
	end := windowEnd
	if !res.TimedOut && len(s.completed) > 0 {
		end = t0
		for _, t := range s.completed {
			if t.After(end) {
				end = t
			}
		}
	}
	res.DurationSeconds = round3(end.Sub(t0).Seconds())
	if res.DurationSeconds > 0 {
		res.PodsPerSecond = round3(float64(res.PodsDone) / end.Sub(t0).Seconds())
	}
	var lat []float64
	for pod, t := range s.completed {
		lat = append(lat, t.Sub(s.created[pod]).Seconds())
		res.Timeline = append(res.Timeline, round3(t.Sub(t0).Seconds()))
	}
	sort.Float64s(lat)
	sort.Float64s(res.Timeline)
	res.Latency = Latency{P50: round3(percentile(lat, 0.50)), P90: round3(percentile(lat, 0.90)), P99: round3(percentile(lat, 0.99))}
	if len(lat) > 0 {
		res.Latency.Max = round3(lat[len(lat)-1])
	}
	var toRef, refToBound []float64
	for _, c := range p.claims {
		pod := p.pods[c.pod].name
		ref, ok := s.claimRefSet[c.name]
		if !ok {
			continue
		}
		toRef = append(toRef, ref.Sub(s.created[pod]).Seconds())
		if bound, ok := s.claimBound[c.name]; ok {
			refToBound = append(refToBound, bound.Sub(ref).Seconds())
		}
	}
	res.ToClaimRef, res.ClaimRefToBound = latency(toRef), latency(refToBound)
	pvNode := map[string]string{}
	for _, pv := range p.pvs {
		pvNode[pv.name] = p.nodes[pv.node]
	}
	claimPod := map[string]string{}
	for _, c := range p.claims {
		claimPod[c.name] = p.pods[c.pod].name
	}
	for claim, vol := range s.claimVolume {
		capacity, ok := p.pvCapacity[vol]
		if !ok {
			continue
		}
		res.ClaimsBound++
		if res.Bindings == nil {
			res.Bindings = map[string]Binding{}
		}
		res.Bindings[claim] = Binding{PV: vol, Capacity: capacity, Request: p.claimRequest[claim]}
		res.WastedBytes += capacity - p.claimRequest[claim]
		res.RequestedBytes += p.claimRequest[claim]
		if node, ok := s.podNode[claimPod[claim]]; ok && node != pvNode[vol] {
			res.Misplaced++
		}
	}
	res.WastedGiB = round3(float64(res.WastedBytes) / float64(gi))
}

// Summary is a one-line digest of the result.
func (res *Result) Summary() string {
	status := "done"
	if res.TimedOut {
		status = fmt.Sprintf("TIMED OUT after %.0fs", res.TimeoutSeconds)
	}
	return fmt.Sprintf("%s: %d/%d pods in %.1fs = %.1f pods/s, %.0f API writes, latency p50 %.3fs p90 %.3fs p99 %.3fs (creation→claimRef p50 %.3fs, claimRef→Bound p50 %.3fs p99 %.3fs), waste %.0f GiB over %d claims, scheduler CPU %.1fs (process %.1fs), heap %.0f→%.0f MiB",
		status, res.PodsDone, res.Pods, res.DurationSeconds, res.PodsPerSecond, res.APIWritesTotal,
		res.Latency.P50, res.Latency.P90, res.Latency.P99, res.ToClaimRef.P50, res.ClaimRefToBound.P50, res.ClaimRefToBound.P99, res.WastedGiB, res.ClaimsBound,
		res.SchedulerCPUSeconds, res.ProcessCPUSeconds,
		float64(res.HeapBaselineBytes)/(1<<20), float64(res.HeapPeakBytes)/(1<<20))
}

func latency(v []float64) Latency {
	sort.Float64s(v)
	l := Latency{P50: round3(percentile(v, 0.50)), P90: round3(percentile(v, 0.90)), P99: round3(percentile(v, 0.99))}
	if len(v) > 0 {
		l.Max = round3(v[len(v)-1])
	}
	return l
}

func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// startScheduler starts the scheduler for mode, labelled "scheduler" for
// the CPU profile, with client QPS/burst raised and its own kubeconfig
// (disable-compression, which also gives it its own HTTP/2 connection).
func startScheduler(ctx context.Context, cp *framework.ControlPlane, mode Mode) (*framework.Scheduler, string, string, error) {
	dir, err := os.MkdirTemp("", "berth-perf-scheduler-")
	if err != nil {
		return nil, "", "", err
	}
	kubeconfig := filepath.Join(dir, "scheduler.kubeconfig")
	if err := framework.WriteKubeconfig(cp.Config, kubeconfig); err != nil {
		return nil, "", "", err
	}
	kc, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		return nil, "", "", err
	}
	for _, c := range kc.Clusters {
		c.DisableCompression = true
	}
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		return nil, "", "", err
	}
	opts := []framework.SchedulerOption{}
	name, desc := framework.BerthSchedulerName, "Berth profile (manifests/config/scheduler-config.yaml)"
	switch mode {
	case ModeBerth:
	case ModeBerthPVController:
		desc = "Berth profile, bindMode PVController"
		opts = append(opts, framework.WithPluginArgs("LocalVolumeBinding", map[string]any{"bindMode": "PVController"}))
	case ModeLimit:
		desc = "Berth profile, claims pre-bound"
	case ModeInTree:
		name = framework.DefaultSchedulerName
		desc = "in-tree default profile, VolumeBinding shape [{0,0},{100,10}]"
		opts = append(opts, framework.WithInTreeDefaultProfile(name), framework.WithConfigPatch(func(cfg map[string]any) {
			profiles, _ := cfg["profiles"].([]any)
			for _, pr := range profiles {
				profile, _ := pr.(map[string]any)
				if profile == nil {
					continue
				}
				entries, _ := profile["pluginConfig"].([]any)
				profile["pluginConfig"] = append(entries, map[string]any{
					"name": "VolumeBinding",
					"args": map[string]any{"shape": toJSONList(InTreeShape)},
				})
			}
		}))
	default:
		return nil, "", "", fmt.Errorf("unknown mode %q", mode)
	}
	opts = append(opts, framework.WithConfigPatch(func(cfg map[string]any) {
		conn, _ := cfg["clientConnection"].(map[string]any)
		if conn == nil {
			conn = map[string]any{}
		}
		conn["kubeconfig"] = kubeconfig
		conn["qps"] = float64(clientQPS)
		conn["burst"] = float64(clientBurst)
		cfg["clientConnection"] = conn
	}), framework.WithStartTimeout(5*time.Minute))
	var s *framework.Scheduler
	pprof.Do(ctx, pprof.Labels(cpuLabel, "scheduler"), func(ctx context.Context) {
		s, err = cp.RunScheduler(ctx, dir, opts...)
	})
	if err != nil {
		return nil, "", "", fmt.Errorf("starting the %s scheduler: %w", mode, err)
	}
	return s, name, desc, nil
}

func toJSONList(in []map[string]any) []any {
	out := make([]any, len(in))
	for i, m := range in {
		c := map[string]any{}
		for k, v := range m {
			if n, ok := v.(int); ok {
				c[k] = float64(n)
			} else {
				c[k] = v
			}
		}
		out[i] = c
	}
	return out
}

func createNamespace(ctx context.Context, client kubernetes.Interface) error {
	if _, err := client.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating namespace %s: %w", namespace, err)
	}
	// Pod admission needs the default ServiceAccount, which the
	// serviceaccount controller creates.
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts(namespace).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
}

// sentinelName names the sentinel PV, claim and StorageClass (Immediate
// binding) of the barriers.
const sentinelName = "zz-sentinel"

// volumeBarrier creates the sentinel StorageClass and PV and waits until the
// PV controller has marked the PV Available.
func volumeBarrier(ctx context.Context, client kubernetes.Interface) error {
	sc := framework.MakeStorageClass(framework.StorageClassOptions{Name: sentinelName, BindingMode: storagev1.VolumeBindingImmediate})
	if _, err := client.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the sentinel StorageClass: %w", err)
	}
	pv := framework.MakeLocalPV(framework.LocalPVOptions{Name: sentinelName, Hostname: "no-such-node", StorageClass: sentinelName, Capacity: "1Gi"})
	if _, err := client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the sentinel PV: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, prebindTimeout)
	defer cancel()
	w, err := client.CoreV1().PersistentVolumes().Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + sentinelName})
	if err != nil {
		return err
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		if pv, ok := ev.Object.(*v1.PersistentVolume); ok && pv.Status.Phase == v1.VolumeAvailable {
			return nil
		}
	}
	return fmt.Errorf("the PV controller did not mark the sentinel PV Available: %w", context.Cause(ctx))
}

// claimBarrier creates the sentinel claim (Immediate binding, matching the
// sentinel PV only) and waits until the PV controller has bound it.
func claimBarrier(ctx context.Context, client kubernetes.Interface, rec *recorder) error {
	if _, err := client.CoreV1().PersistentVolumeClaims(namespace).Create(ctx, framework.MakePVC(namespace, framework.PVCOptions{
		Name: sentinelName, StorageClass: sentinelName, Request: "1Gi",
	}), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the sentinel claim: %w", err)
	}
	select {
	case <-rec.sentinelBound:
		return nil
	case <-time.After(prebindTimeout):
		return fmt.Errorf("the PV controller did not bind the sentinel claim within %v", prebindTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// createNodes creates the nodes and removes the not-ready taint that the
// TaintNodesByCondition admission plugin puts on every new node (no
// kubelet or node lifecycle controller runs: nodes need no heartbeats to be
// schedulable).
func createNodes(ctx context.Context, client kubernetes.Interface, p *plan) error {
	return parallel(ctx, len(p.nodes), func(ctx context.Context, i int) error {
		n := framework.MakeNode(framework.NodeOptions{Name: p.nodes[i]})
		n.Status.Conditions = []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
		created, err := client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("creating node %s: %w", n.Name, err)
		}
		kept := created.Spec.Taints[:0]
		for _, t := range created.Spec.Taints {
			if t.Key != v1.TaintNodeNotReady {
				kept = append(kept, t)
			}
		}
		if len(kept) == len(created.Spec.Taints) {
			return nil
		}
		created.Spec.Taints = kept
		_, err = client.CoreV1().Nodes().Update(ctx, created, metav1.UpdateOptions{})
		return err
	})
}

// parallel calls fn(i) for i in [0, n) on createWorkers goroutines and
// returns the first error (after all calls finished).
func parallel(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for range min(createWorkers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					errOnce.Do(func() { firstErr = err })
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// heapSampler records the peak of the process's live heap objects.
type heapSampler struct {
	baseline uint64
	peak     atomic.Uint64
	done     chan struct{}
	stopped  chan struct{}
}

const heapMetric = "/memory/classes/heap/objects:bytes"

func readHeap() uint64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{baseline: readHeap(), done: make(chan struct{}), stopped: make(chan struct{})}
	h.peak.Store(h.baseline)
	go func() {
		defer close(h.stopped)
		tick := time.NewTicker(heapSampleEvery)
		defer tick.Stop()
		for {
			select {
			case <-h.done:
				return
			case <-tick.C:
				if v := readHeap(); v > h.peak.Load() {
					h.peak.Store(v)
				}
			}
		}
	}()
	return h
}

func (h *heapSampler) stop() (baseline, peak uint64) {
	close(h.done)
	<-h.stopped
	if v := readHeap(); v > h.peak.Load() {
		h.peak.Store(v)
	}
	return h.baseline, h.peak.Load()
}

func processCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// Machine describes where a run ran.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	MemoryGiB int    `json:"memoryGiB"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	GOMAXPROC int    `json:"gomaxprocs"`
	// LoadAvg is /proc/loadavg when the run started: other processes on
	// the machine compete for the same cores.
	LoadAvg string `json:"loadavg"`
}

func machineInfo() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), GOMAXPROC: runtime.GOMAXPROCS(0)}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range bytes.Split(b, []byte("\n")) {
			if k, v, ok := bytes.Cut(line, []byte(":")); ok && string(bytes.TrimSpace(k)) == "model name" {
				m.CPU = string(bytes.TrimSpace(v))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			m.MemoryGiB = int(math.Round(float64(kb) / (1 << 20)))
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = string(bytes.TrimSpace(b))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = string(bytes.TrimSpace(b))
	}
	return m
}

func writeJSON(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
