package perf

import (
	"bytes"
	"context"
	"os"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Environment of TestBenchE2E (set by `make bench-e2e`).
const (
	// FixturesEnv lists the fixtures, e.g. "500x10x1000x1,5000x10x1000x1".
	FixturesEnv = "BERTH_PERF_FIXTURES"
	// ModesEnv lists the modes (default "berth,in-tree,limit").
	ModesEnv = "BERTH_PERF_MODES"
	// RunTimeoutEnv is the per-run time limit (default 10m).
	RunTimeoutEnv = "BERTH_PERF_RUN_TIMEOUT"
	// OutEnv is the output directory (default: a temporary directory).
	OutEnv = "BERTH_PERF_OUT"
)

func outDir(t *testing.T) string {
	if d := os.Getenv(OutEnv); d != "" {
		require.NoError(t, os.MkdirAll(d, 0o755))
		return d
	}
	return t.TempDir()
}

// TestSmall is the CI fixture: 50 nodes × 10 PVs, 100 pods × 1 claim, in
// the three modes. Every pod must be bound with its claims on its node, and
// Berth must not waste more capacity than the in-tree scheduler.
func TestSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three control planes")
	}
	f := Fixture{Nodes: 50, PVsPerNode: 10, Pods: 100, ClaimsPerPod: 1}
	dir := outDir(t)
	results := map[Mode]*Result{}
	for _, mode := range Modes {
		res, err := Run(t.Context(), Options{Fixture: f, Mode: mode, Timeout: 3 * time.Minute, OutDir: dir, Logf: t.Logf})
		require.NoError(t, err, "%s run", mode)
		results[mode] = res
		assert.False(t, res.TimedOut, "%s run timed out", mode)
		assert.Equal(t, f.Pods, res.PodsDone, "%s: pods done", mode)
		assert.Equal(t, f.Pods*f.ClaimsPerPod, res.ClaimsBound, "%s: claims bound", mode)
		assert.Zero(t, res.Misplaced, "%s: claims bound to a PV on another node than their pod", mode)
		if mode != ModeLimit { // the limit run's scheduler may need less than one 10ms profile sample
			assert.Greater(t, res.SchedulerCPUSeconds, 0.0, "%s: the scheduler's CPU shows in the profile", mode)
		}
	}
	assert.LessOrEqual(t, results[ModeBerth].WastedBytes, results[ModeInTree].WastedBytes,
		"Berth wastes more capacity (%.0f GiB) than the in-tree scheduler (%.0f GiB)", results[ModeBerth].WastedGiB, results[ModeInTree].WastedGiB)
	assert.True(t, results[ModeInTree].StorageCapacityScoring, "StorageCapacityScoring should be on (beta, default on in 1.37)")
}

// TestBenchE2E runs the fixtures of BERTH_PERF_FIXTURES in every mode of
// BERTH_PERF_MODES, each on a fresh control plane, and writes the results
// to BERTH_PERF_OUT. Runs that hit the time limit are reported, not failed.
func TestBenchE2E(t *testing.T) {
	spec := os.Getenv(FixturesEnv)
	if spec == "" {
		t.Skipf("set %s (e.g. 500x10x1000x1) to run; see make bench-e2e", FixturesEnv)
	}
	fixtures, err := ParseFixtures(spec)
	require.NoError(t, err)
	modes := Modes
	if m := os.Getenv(ModesEnv); m != "" {
		modes = nil
		for _, s := range strings.Split(m, ",") {
			modes = append(modes, Mode(strings.TrimSpace(s)))
		}
	}
	timeout := 10 * time.Minute
	if s := os.Getenv(RunTimeoutEnv); s != "" {
		timeout, err = time.ParseDuration(s)
		require.NoError(t, err, RunTimeoutEnv)
	}
	dir := outDir(t)
	for _, f := range fixtures {
		for _, mode := range modes {
			t.Run(f.String()+"/"+string(mode), func(t *testing.T) {
				res, err := Run(t.Context(), Options{Fixture: f, Mode: mode, Timeout: timeout, OutDir: dir, Logf: t.Logf})
				require.NoError(t, err)
				assert.Zero(t, res.Misplaced, "claims bound to a PV on another node than their pod")
			})
		}
	}
}

func TestParseFixtures(t *testing.T) {
	got, err := ParseFixtures("500x10x1000x1, 50x10x100x3")
	require.NoError(t, err)
	assert.Equal(t, []Fixture{{500, 10, 1000, 1}, {50, 10, 100, 3}}, got)
	for _, bad := range []string{"", "1x2x3", "1x2x3x0", "axbxcxd"} {
		_, err := ParseFixtures(bad)
		assert.Error(t, err, bad)
	}
}

func TestPlanPrebindFits(t *testing.T) {
	f := Fixture{Nodes: 20, PVsPerNode: 10, Pods: 40, ClaimsPerPod: 3}
	p, err := newPlan(f, true)
	require.NoError(t, err)
	again, err := newPlan(f, true)
	require.NoError(t, err)
	assert.Equal(t, p.pvs, again.pvs, "plans are deterministic")
	pvByName := map[string]pvSpec{}
	for _, pv := range p.pvs {
		pvByName[pv.name] = pv
	}
	for _, pod := range p.pods {
		node := -1
		for _, c := range p.claims {
			if p.pods[c.pod].name != pod.name {
				continue
			}
			pv, ok := pvByName[c.volume]
			require.True(t, ok, "claim %s is pre-bound", c.name)
			assert.Equal(t, c.name, pv.claim)
			assert.GreaterOrEqual(t, pv.capacity, c.request)
			if node >= 0 {
				assert.Equal(t, node, pv.node, "all claims of %s on one node", pod.name)
			}
			node = pv.node
		}
	}
}

func TestCPUByLabel(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, pprof.StartCPUProfile(&buf))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	pprof.Do(ctx, pprof.Labels(cpuLabel, "busy"), func(ctx context.Context) {
		done := make(chan struct{})
		go func() { // inherits the label
			defer close(done)
			x := 0
			for ctx.Err() == nil {
				x++
			}
			_ = x
		}()
		<-done
	})
	pprof.StopCPUProfile()
	got, err := cpuByLabel(buf.Bytes(), cpuLabel)
	require.NoError(t, err)
	assert.Greater(t, got["busy"], 0.1, "CPU by label: %v", got)
}
