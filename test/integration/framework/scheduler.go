package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
	v1 "k8s.io/api/core/v1"
	"k8s.io/component-base/configz"
	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"

	"k8s.io/kubernetes/cmd/kube-scheduler/app"
	"k8s.io/kubernetes/cmd/kube-scheduler/app/options"

	"github.com/berth-dev/berth/pkg/plugins"
)

const (
	// BerthSchedulerName is the schedulerName of the Berth profile in
	// manifests/config/scheduler-config.yaml, and the default schedulerName
	// of pods made by the helpers here.
	BerthSchedulerName = "berth-scheduler"
	// DefaultSchedulerName is the in-tree kube-scheduler's profile name.
	DefaultSchedulerName = v1.DefaultSchedulerName
)

// SchedulerConfigPath returns the absolute path of the repository's
// manifests/config/scheduler-config.yaml, located from this source file.
func SchedulerConfigPath() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("framework: cannot locate the source file")
	}
	// file is <repo>/test/integration/framework/scheduler.go.
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "manifests", "config", "scheduler-config.yaml")
}

// SchedulerOption customises StartScheduler.
type SchedulerOption func(*schedulerSettings)

type schedulerSettings struct {
	configFile string
	configYAML []byte
	patches    []func(map[string]any)
	flags      []string
	timeout    time.Duration
}

// WithConfigFile starts the scheduler with another KubeSchedulerConfiguration
// file instead of manifests/config/scheduler-config.yaml.
func WithConfigFile(path string) SchedulerOption {
	return func(s *schedulerSettings) { s.configFile, s.configYAML = path, nil }
}

// WithConfigYAML starts the scheduler with the given KubeSchedulerConfiguration.
func WithConfigYAML(config string) SchedulerOption {
	return func(s *schedulerSettings) { s.configFile, s.configYAML = "", []byte(config) }
}

// WithInTreeDefaultProfile starts a scheduler whose only profile is the
// in-tree default (in-tree VolumeBinding, no Berth plugin enabled) under
// schedulerName, for comparison runs. The Berth plugins are still
// registered, as in cmd/scheduler, just not enabled.
func WithInTreeDefaultProfile(schedulerName string) SchedulerOption {
	return WithConfigYAML(fmt.Sprintf(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: %q
`, schedulerName))
}

// WithConfigPatch edits the configuration (decoded from YAML into generic
// maps) before the scheduler reads it, e.g.
//
//	framework.WithConfigPatch(func(cfg map[string]any) { cfg["podMaxBackoffSeconds"] = 1 })
func WithConfigPatch(patch func(cfg map[string]any)) SchedulerOption {
	return func(s *schedulerSettings) { s.patches = append(s.patches, patch) }
}

// WithPluginArgs merges args into the pluginConfig args of plugin in every
// profile (adding a pluginConfig entry where a profile has none), e.g.
//
//	framework.WithPluginArgs("LocalVolumeBinding", map[string]any{"bindTimeoutSeconds": 5})
func WithPluginArgs(plugin string, args map[string]any) SchedulerOption {
	// The args go into the configuration through JSON, as if written in
	// the YAML file.
	args = jsonRoundTrip(args)
	return WithConfigPatch(func(cfg map[string]any) {
		profiles, _ := cfg["profiles"].([]any)
		for _, p := range profiles {
			profile, ok := p.(map[string]any)
			if !ok {
				continue
			}
			entries, _ := profile["pluginConfig"].([]any)
			merged := false
			for _, pc := range entries {
				entry, ok := pc.(map[string]any)
				if !ok || entry["name"] != plugin {
					continue
				}
				existing, _ := entry["args"].(map[string]any)
				if existing == nil {
					existing = map[string]any{}
				}
				for k, v := range args {
					existing[k] = v
				}
				entry["args"] = existing
				merged = true
			}
			if !merged {
				profile["pluginConfig"] = append(entries, map[string]any{"name": plugin, "args": args})
			}
		}
	})
}

// WithFlags adds kube-scheduler command-line flags (e.g. "-v=4"; logging
// flags only take effect through BERTH_INTEGRATION_V, see VerbosityEnv).
func WithFlags(args ...string) SchedulerOption {
	return func(s *schedulerSettings) { s.flags = append(s.flags, args...) }
}

// WithStartTimeout bounds how long StartScheduler waits for the scheduler's
// caches (default 1 minute).
func WithStartTimeout(d time.Duration) SchedulerOption {
	return func(s *schedulerSettings) { s.timeout = d }
}

// Scheduler is a running Berth scheduler (kube-scheduler plus Berth's
// plugins), started as cmd/scheduler starts it.
type Scheduler struct {
	// ConfigFile is the configuration the scheduler was started with: a copy
	// of the chosen file with clientConnection.kubeconfig pointed at the
	// test control plane.
	ConfigFile string
	// Profiles are the scheduler names the configuration defines.
	Profiles []string

	cancel   context.CancelFunc
	done     chan struct{}
	err      error
	stopOnce sync.Once
}

// schedulerStartMu serialises scheduler starts: app.Run registers the
// process-global configz "componentconfig" entry, which we remove first so
// that schedulers can be restarted (as upstream's scheduler test server does
// on teardown).
var schedulerStartMu sync.Mutex

// StartScheduler starts a scheduler against the shared control plane (see
// Main) and stops it when the test ends. See ControlPlane.StartScheduler.
func StartScheduler(t testing.TB, opts ...SchedulerOption) *Scheduler {
	t.Helper()
	return Shared(t).StartScheduler(t, opts...)
}

// StartScheduler starts the Berth scheduler through the same code path as
// cmd/scheduler: options.NewOptions(), the command-line flags
// --config=<manifests/config/scheduler-config.yaml, copied with
// clientConnection.kubeconfig set to this control plane> --leader-elect=false
// --secure-port=0, then app.Setup(ctx, opts, plugins.Options()...) and
// app.Run. Leader election is off (the --leader-elect flag overrides the
// file, as for any kube-scheduler) so that starts are immediate and Stop
// does not hit app.Run's os.Exit on losing the lease; secure serving
// (healthz/metrics) is off.
//
// It returns once the scheduler's informers and event handlers have synced,
// so pods created afterwards are seen. Stop it with Stop (also done when the
// test ends); start it again with another StartScheduler call, e.g. to test
// a scheduler restart in the middle of a binding.
func (cp *ControlPlane) StartScheduler(t testing.TB, opts ...SchedulerOption) *Scheduler {
	t.Helper()
	s, err := cp.RunScheduler(context.Background(), t.TempDir(), opts...)
	if err != nil {
		t.Fatalf("starting the scheduler: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// RunScheduler is StartScheduler without a testing.TB: it writes its config
// into dir and runs until Stop is called or ctx is cancelled.
func (cp *ControlPlane) RunScheduler(ctx context.Context, dir string, opts ...SchedulerOption) (*Scheduler, error) {
	settings := schedulerSettings{configFile: SchedulerConfigPath(), timeout: time.Minute}
	for _, o := range opts {
		o(&settings)
	}
	configFile, profiles, err := cp.writeSchedulerConfig(dir, settings)
	if err != nil {
		return nil, err
	}

	o := options.NewOptions()
	fs := pflag.NewFlagSet("berth-scheduler", pflag.ContinueOnError)
	for _, f := range o.Flags.FlagSets {
		fs.AddFlagSet(f)
	}
	args := append([]string{"--config=" + configFile, "--leader-elect=false", "--secure-port=0"}, settings.flags...)
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("scheduler flags %v: %w", args, err)
	}
	// What the command's PersistentPreRunE does.
	if err := o.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithCancel(ctx)
	s := &Scheduler{ConfigFile: configFile, Profiles: profiles, cancel: cancel, done: make(chan struct{})}

	schedulerStartMu.Lock()
	defer schedulerStartMu.Unlock()
	cc, sched, err := app.Setup(ctx, o, plugins.Options()...)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("app.Setup with %s: %w", configFile, err)
	}
	if cc.LeaderElection != nil {
		// --leader-elect=false should have done this already.
		klog.FromContext(ctx).Info("Disabling leader election left on by the configuration")
		cc.LeaderElection = nil
		cc.ComponentConfig.LeaderElection.LeaderElect = false
	}
	configz.Delete("componentconfig")
	go func() {
		defer close(s.done)
		err := app.Run(ctx, cc, sched)
		// app.Run only returns an error; when stopped without leader
		// election it is "finished without leader elect".
		if ctx.Err() == nil {
			s.err = err
		}
	}()

	waitCtx, waitCancel := context.WithTimeout(ctx, settings.timeout)
	defer waitCancel()
	go func() {
		select {
		case <-s.done:
			waitCancel()
		case <-waitCtx.Done():
		}
	}()
	if err := sched.WaitForHandlersSync(waitCtx); err != nil {
		s.Stop()
		if s.err != nil {
			return nil, fmt.Errorf("scheduler stopped while starting: %w", s.err)
		}
		return nil, fmt.Errorf("waiting for the scheduler's caches: %w", err)
	}
	select {
	case <-s.done:
		return nil, fmt.Errorf("scheduler stopped while starting: %w", s.err)
	default:
	}
	return s, nil
}

// Stop stops the scheduler and waits until app.Run has returned. Safe to
// call more than once.
func (s *Scheduler) Stop() {
	s.stopOnce.Do(func() {
		s.cancel()
		<-s.done
	})
}

// Err returns the error app.Run failed with, if it stopped on its own.
func (s *Scheduler) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// writeSchedulerConfig copies the configuration into dir with
// clientConnection.kubeconfig pointed at this control plane and the patches
// applied, and returns its path and profile names.
func (cp *ControlPlane) writeSchedulerConfig(dir string, settings schedulerSettings) (string, []string, error) {
	raw := settings.configYAML
	if raw == nil {
		b, err := os.ReadFile(settings.configFile)
		if err != nil {
			return "", nil, fmt.Errorf("reading the scheduler configuration: %w", err)
		}
		raw = b
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		return "", nil, fmt.Errorf("decoding the scheduler configuration: %w", err)
	}
	if cfg == nil {
		return "", nil, errors.New("empty scheduler configuration")
	}
	conn, _ := cfg["clientConnection"].(map[string]any)
	if conn == nil {
		conn = map[string]any{}
	}
	conn["kubeconfig"] = cp.KubeconfigPath
	cfg["clientConnection"] = conn
	for _, patch := range settings.patches {
		patch(cfg)
	}
	var profiles []string
	if list, ok := cfg["profiles"].([]any); ok {
		for _, p := range list {
			if m, ok := p.(map[string]any); ok {
				name, _ := m["schedulerName"].(string)
				if name == "" {
					name = DefaultSchedulerName
				}
				profiles = append(profiles, name)
			}
		}
	}
	if len(profiles) == 0 {
		profiles = []string{DefaultSchedulerName}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return "", nil, err
	}
	path := filepath.Join(dir, "scheduler-config.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return "", nil, err
	}
	return path, profiles, nil
}

// jsonRoundTrip converts typed values (int, structs, ...) into the generic
// JSON values the decoded configuration holds.
func jsonRoundTrip(in map[string]any) map[string]any {
	b, err := json.Marshal(in)
	if err != nil {
		panic(fmt.Sprintf("framework: plugin args %v: %v", in, err))
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}
