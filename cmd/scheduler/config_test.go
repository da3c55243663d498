package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
	schedulerserverconfig "k8s.io/kubernetes/cmd/kube-scheduler/app/config"
	"k8s.io/kubernetes/cmd/kube-scheduler/app/options"
	"k8s.io/kubernetes/pkg/scheduler"
	schedconfig "k8s.io/kubernetes/pkg/scheduler/apis/config"
	"sigs.k8s.io/yaml"

	"github.com/berth-dev/berth/pkg/apis/config"
	"github.com/berth-dev/berth/pkg/plugins"
)

const manifestDir = "../../manifests/config"

// manifests are the shipped scheduler configurations and the scheduler name
// of their single profile.
var manifests = []struct {
	file          string
	schedulerName string
}{
	{file: "scheduler-config.yaml", schedulerName: "berth-scheduler"},
	{file: "scheduler-config-default-scheduler.yaml", schedulerName: "default-scheduler"},
}

// unreachableServer returns the URL of a local port nothing listens on, so
// that any API call fails fast: Setup must not need an API server.
func unreachableServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "https://" + addr
}

// writeKubeconfig writes a kubeconfig pointing at an unreachable server to a
// temporary directory and returns its path (as upstream
// cmd/kube-scheduler/app/server_test.go does with a fake server).
func writeKubeconfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	data := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- cluster:
    insecure-skip-tls-verify: true
    server: %s
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
users:
- name: default
  user:
    username: config
`, unreachableServer(t))
	require.NoError(t, os.WriteFile(path, []byte(data), 0o600))
	return path
}

// withKubeconfig copies a scheduler configuration to a temporary file, with
// clientConnection.kubeconfig set: the shipped manifests rely on the
// in-cluster configuration, which a test does not have. Nothing else changes.
func withKubeconfig(t *testing.T, data []byte) string {
	t.Helper()
	var cfg map[string]any
	require.NoError(t, yaml.Unmarshal(data, &cfg))
	cc, _ := cfg["clientConnection"].(map[string]any)
	if cc == nil {
		cc = map[string]any{}
	}
	cc["kubeconfig"] = writeKubeconfig(t)
	cfg["clientConnection"] = cc
	out, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "scheduler-config.yaml")
	require.NoError(t, os.WriteFile(path, out, 0o600))
	return path
}

// setup runs the real kube-scheduler start-up path (flag defaults, config
// file loading, decoding, defaulting, validation, scheduler and framework
// construction, plugin New) with Berth's plugins, stopping short of running.
func setup(t *testing.T, configFile string) (*schedulerserverconfig.CompletedConfig, *scheduler.Scheduler, error) {
	t.Helper()
	opts := options.NewOptions()
	opts.ConfigFile = configFile
	// Don't bind the default secure port (10259): use a free local one.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	opts.SecureServing.Listener = l

	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	return app.Setup(ctx, opts, plugins.Options()...)
}

func pluginNames(ps []schedconfig.Plugin) []string {
	names := make([]string, 0, len(ps))
	for _, p := range ps {
		names = append(names, p.Name)
	}
	return names
}

func findPlugin(ps []schedconfig.Plugin, name string) (schedconfig.Plugin, bool) {
	i := slices.IndexFunc(ps, func(p schedconfig.Plugin) bool { return p.Name == name })
	if i < 0 {
		return schedconfig.Plugin{}, false
	}
	return ps[i], true
}

func pluginArgs(prof *schedconfig.KubeSchedulerProfile, name string) any {
	for _, pc := range prof.PluginConfig {
		if pc.Name == name {
			return pc.Args
		}
	}
	return nil
}

var (
	wantLocalVolumeBindingArgs = &config.LocalVolumeBindingArgs{BindTimeoutSeconds: 600, BindMode: config.BindModeDirect}
	wantStorageScoreArgs       = &config.StorageScoreArgs{Shape: []config.UtilizationShapePoint{
		{Utilization: 0, Score: 0},
		{Utilization: 100, Score: 10},
	}}
)

// TestManifestsDecode loads the shipped files as they are (no kubeconfig
// injected) with kube-scheduler's own config file loader.
func TestManifestsDecode(t *testing.T) {
	for _, m := range manifests {
		t.Run(m.file, func(t *testing.T) {
			logger, _ := ktesting.NewTestContext(t)
			cfg, err := options.LoadConfigFromFile(logger, filepath.Join(manifestDir, m.file))
			require.NoError(t, err)

			assert.Equal(t, "kubescheduler.config.k8s.io/v1", cfg.APIVersion)
			assert.Empty(t, cfg.ClientConnection.Kubeconfig, "the manifests run in-cluster")
			assert.True(t, cfg.LeaderElection.LeaderElect)
			assert.Equal(t, "berth-scheduler", cfg.LeaderElection.ResourceName)
			assert.Equal(t, "kube-system", cfg.LeaderElection.ResourceNamespace)

			require.Len(t, cfg.Profiles, 1)
			prof := &cfg.Profiles[0]
			assert.Equal(t, m.schedulerName, prof.SchedulerName)
			assert.Equal(t, wantLocalVolumeBindingArgs, pluginArgs(prof, "LocalVolumeBinding"))
			assert.Equal(t, wantStorageScoreArgs, pluginArgs(prof, "StorageScore"))
		})
	}
}

// TestManifestsSetup loads the shipped files through app.Setup, the path the
// berth-scheduler command takes.
func TestManifestsSetup(t *testing.T) {
	for _, m := range manifests {
		t.Run(m.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(manifestDir, m.file))
			require.NoError(t, err)

			cc, sched, err := setup(t, withKubeconfig(t, data))
			require.NoError(t, err)

			le := cc.ComponentConfig.LeaderElection
			assert.True(t, le.LeaderElect)
			assert.Equal(t, "berth-scheduler", le.ResourceName)
			assert.Equal(t, "kube-system", le.ResourceNamespace)
			assert.NotNil(t, cc.LeaderElection, "leader election must be configured")

			// The defaulted profile: kube-scheduler's default plugins under
			// multiPoint, plus Berth's, minus VolumeBinding.
			require.Len(t, cc.ComponentConfig.Profiles, 1)
			prof := &cc.ComponentConfig.Profiles[0]
			assert.Equal(t, m.schedulerName, prof.SchedulerName)
			mp := prof.Plugins.MultiPoint
			assert.NotContains(t, pluginNames(mp.Enabled), "VolumeBinding")
			assert.Contains(t, pluginNames(mp.Enabled), "LocalVolumeBinding")
			assert.Contains(t, pluginNames(mp.Enabled), "NodeResourcesFit", "default plugins must be kept")
			ss, ok := findPlugin(mp.Enabled, "StorageScore")
			require.True(t, ok, "StorageScore must be enabled under multiPoint")
			assert.Equal(t, int32(10), ss.Weight)

			// Decoded, defaulted, internal args.
			assert.Equal(t, wantLocalVolumeBindingArgs, pluginArgs(prof, "LocalVolumeBinding"))
			assert.Equal(t, wantStorageScoreArgs, pluginArgs(prof, "StorageScore"))

			// The framework built from the profile: multiPoint expanded to
			// the extension points each plugin implements.
			require.Contains(t, sched.Profiles, m.schedulerName)
			got := sched.Profiles[m.schedulerName].ListPlugins()
			require.NotNil(t, got)
			for ext, set := range map[string]schedconfig.PluginSet{
				"PreFilter": got.PreFilter, "Filter": got.Filter, "PostFilter": got.PostFilter,
				"Reserve": got.Reserve, "Permit": got.Permit, "PreBind": got.PreBind,
				"Bind": got.Bind, "PostBind": got.PostBind, "PreScore": got.PreScore,
				"Score": got.Score, "PreEnqueue": got.PreEnqueue, "QueueSort": got.QueueSort,
			} {
				assert.NotContains(t, pluginNames(set.Enabled), "VolumeBinding", "VolumeBinding enabled at %s", ext)
			}
			for ext, set := range map[string]schedconfig.PluginSet{
				"PreFilter": got.PreFilter, "Filter": got.Filter, "Reserve": got.Reserve, "PreBind": got.PreBind,
			} {
				assert.Contains(t, pluginNames(set.Enabled), "LocalVolumeBinding", "LocalVolumeBinding missing at %s", ext)
			}
			assert.Contains(t, pluginNames(got.PreScore.Enabled), "StorageScore", "StorageScore missing at PreScore")
			score, ok := findPlugin(got.Score.Enabled, "StorageScore")
			if assert.True(t, ok, "StorageScore missing at Score: %v", pluginNames(got.Score.Enabled)) {
				assert.Equal(t, int32(10), score.Weight)
			}
			// Other plugins keep their default weights.
			if fit, ok := findPlugin(got.Score.Enabled, "NodeResourcesFit"); assert.True(t, ok) {
				assert.Equal(t, int32(1), fit.Weight)
			}
		})
	}
}

// TestSetupDefaultArgs: enabling the plugins without pluginConfig gives them
// defaulted args.
func TestSetupDefaultArgs(t *testing.T) {
	cc, _, err := setup(t, withKubeconfig(t, []byte(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection:
  leaderElect: false
profiles:
- schedulerName: berth-scheduler
  plugins:
    multiPoint:
      enabled:
      - name: LocalVolumeBinding
      - name: StorageScore
      disabled:
      - name: VolumeBinding
`)))
	require.NoError(t, err)
	prof := &cc.ComponentConfig.Profiles[0]
	assert.Equal(t, wantLocalVolumeBindingArgs, pluginArgs(prof, "LocalVolumeBinding"))
	assert.Equal(t, wantStorageScoreArgs, pluginArgs(prof, "StorageScore"))
}

// TestSetupInvalidArgs: invalid or unknown args fail start-up with an error
// naming the offending field. Unknown fields are rejected by the strict
// decoder; invalid values by the plugins' New, which validates its args with
// pkg/apis/config/validation.
func TestSetupInvalidArgs(t *testing.T) {
	const header = `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection:
  leaderElect: false
profiles:
- schedulerName: berth-scheduler
  plugins:
    multiPoint:
      enabled:
      - name: LocalVolumeBinding
      - name: StorageScore
        weight: 10
      disabled:
      - name: VolumeBinding
  pluginConfig:
`
	tests := []struct {
		name         string
		pluginConfig string
		wantErr      []string
	}{
		{
			name: "negative bindTimeoutSeconds",
			pluginConfig: `  - name: LocalVolumeBinding
    args:
      bindTimeoutSeconds: -1
`,
			wantErr: []string{"bindTimeoutSeconds"},
		},
		{
			name: "zero bindTimeoutSeconds",
			pluginConfig: `  - name: LocalVolumeBinding
    args:
      bindTimeoutSeconds: 0
`,
			wantErr: []string{"bindTimeoutSeconds"},
		},
		{
			name: "unsupported bindMode",
			pluginConfig: `  - name: LocalVolumeBinding
    args:
      bindMode: Sometimes
`,
			wantErr: []string{"bindMode", `"Sometimes"`, `supported values: "Direct", "PVController"`},
		},
		{
			name: "non-increasing utilization",
			pluginConfig: `  - name: StorageScore
    args:
      shape:
      - utilization: 50
        score: 0
      - utilization: 50
        score: 10
`,
			wantErr: []string{"shape[1].utilization"},
		},
		{
			name: "score out of range",
			pluginConfig: `  - name: StorageScore
    args:
      shape:
      - utilization: 0
        score: 0
      - utilization: 100
        score: 11
`,
			wantErr: []string{"shape[1].score"},
		},
		{
			name: "unknown field in LocalVolumeBinding args",
			pluginConfig: `  - name: LocalVolumeBinding
    args:
      bindTimeoutSeconds: 600
      bindTimeout: 10m
`,
			wantErr: []string{"unknown field", "bindTimeout", "LocalVolumeBinding"},
		},
		{
			name: "unknown field in StorageScore args",
			pluginConfig: `  - name: StorageScore
    args:
      shape:
      - utilization: 0
        score: 0
        weight: 3
`,
			wantErr: []string{"unknown field", "weight", "StorageScore"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := setup(t, withKubeconfig(t, []byte(header+tc.pluginConfig)))
			require.Error(t, err, "Setup must reject the configuration")
			for _, want := range tc.wantErr {
				assert.Contains(t, err.Error(), want)
			}
		})
	}
}
