package scheme

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"
	schedconfig "k8s.io/kubernetes/pkg/scheduler/apis/config"
	kubeschedulerscheme "k8s.io/kubernetes/pkg/scheduler/apis/config/scheme"
	kubeschedulerconfigv1 "k8s.io/kubernetes/pkg/scheduler/apis/config/v1"

	"github.com/berth-dev/berth/pkg/apis/config"
	configv1 "github.com/berth-dev/berth/pkg/apis/config/v1"
)

func decode(t *testing.T, data string) (runtime.Object, error) {
	t.Helper()
	obj, _, err := kubeschedulerscheme.Codecs.UniversalDecoder().Decode([]byte(data), nil, nil)
	return obj, err
}

func decodeConfig(t *testing.T, data string) *schedconfig.KubeSchedulerConfiguration {
	t.Helper()
	obj, err := decode(t, data)
	require.NoError(t, err)
	cfg, ok := obj.(*schedconfig.KubeSchedulerConfiguration)
	require.True(t, ok, "got %T", obj)
	return cfg
}

// pluginArgs returns the args of the named plugin in the profile, or nil.
func pluginArgs(prof *schedconfig.KubeSchedulerProfile, name string) runtime.Object {
	for _, pc := range prof.PluginConfig {
		if pc.Name == name {
			return pc.Args
		}
	}
	return nil
}

func TestRegistered(t *testing.T) {
	for _, s := range []*runtime.Scheme{kubeschedulerscheme.Scheme, kubeschedulerconfigv1.GetPluginArgConversionScheme()} {
		for _, kind := range []string{"LocalVolumeBindingArgs", "StorageScoreArgs"} {
			assert.True(t, s.Recognizes(configv1.SchemeGroupVersion.WithKind(kind)), kind)
			assert.True(t, s.Recognizes(config.SchemeGroupVersion.WithKind(kind)), kind)
		}
		// The in-tree args are still there.
		assert.True(t, s.Recognizes(configv1.SchemeGroupVersion.WithKind("VolumeBindingArgs")))
	}
	// Registering again (e.g. into a fresh scheme) works.
	require.NoError(t, AddToScheme(runtime.NewScheme()))
}

func TestDecodeStandaloneArgs(t *testing.T) {
	tests := []struct {
		name string
		data string
		want runtime.Object
	}{
		{
			name: "LocalVolumeBindingArgs defaulted",
			data: "apiVersion: kubescheduler.config.k8s.io/v1\nkind: LocalVolumeBindingArgs\n",
			want: &config.LocalVolumeBindingArgs{BindTimeoutSeconds: 600, BindMode: config.BindModeDirect},
		},
		{
			name: "LocalVolumeBindingArgs explicit",
			data: "apiVersion: kubescheduler.config.k8s.io/v1\nkind: LocalVolumeBindingArgs\nbindTimeoutSeconds: 30\n",
			want: &config.LocalVolumeBindingArgs{BindTimeoutSeconds: 30, BindMode: config.BindModeDirect},
		},
		{
			name: "LocalVolumeBindingArgs explicit bindMode",
			data: "apiVersion: kubescheduler.config.k8s.io/v1\nkind: LocalVolumeBindingArgs\nbindMode: PVController\n",
			want: &config.LocalVolumeBindingArgs{BindTimeoutSeconds: 600, BindMode: config.BindModePVController},
		},
		{
			name: "StorageScoreArgs defaulted",
			data: "apiVersion: kubescheduler.config.k8s.io/v1\nkind: StorageScoreArgs\n",
			want: &config.StorageScoreArgs{Shape: config.DefaultStorageScoreShape()},
		},
		{
			name: "StorageScoreArgs explicit",
			data: `apiVersion: kubescheduler.config.k8s.io/v1
kind: StorageScoreArgs
shape:
- utilization: 0
  score: 10
- utilization: 80
  score: 2
`,
			want: &config.StorageScoreArgs{Shape: []config.UtilizationShapePoint{{Utilization: 0, Score: 10}, {Utilization: 80, Score: 2}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obj, err := decode(t, tc.data)
			require.NoError(t, err)
			assert.Equal(t, tc.want, obj)
		})
	}
}

func TestDecodeStandaloneArgsStrict(t *testing.T) {
	_, err := decode(t, "apiVersion: kubescheduler.config.k8s.io/v1\nkind: LocalVolumeBindingArgs\nbindTimeoutSecond: 30\n")
	require.Error(t, err)
	assert.True(t, runtime.IsStrictDecodingError(err), "want a strict decoding error, got %v", err)
	assert.Contains(t, err.Error(), `unknown field "bindTimeoutSecond"`)

	_, err = decode(t, "apiVersion: kubescheduler.config.k8s.io/v1\nkind: StorageScoreArgs\nshape:\n- utilization: 0\n  scor: 1\n")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unknown field")
}

const profileConfig = `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
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
  - name: LocalVolumeBinding
    args:
      bindTimeoutSeconds: 120
      bindMode: PVController
  - name: StorageScore
    args:
      shape:
      - utilization: 0
        score: 0
      - utilization: 50
        score: 10
  - name: DefaultPreemption
    args:
      minCandidateNodesPercentage: 20
`

func TestDecodeKubeSchedulerConfiguration(t *testing.T) {
	cfg := decodeConfig(t, profileConfig)
	require.Len(t, cfg.Profiles, 1)
	prof := &cfg.Profiles[0]

	assert.Equal(t, &config.LocalVolumeBindingArgs{BindTimeoutSeconds: 120, BindMode: config.BindModePVController}, pluginArgs(prof, "LocalVolumeBinding"))
	assert.Equal(t,
		&config.StorageScoreArgs{Shape: []config.UtilizationShapePoint{{Utilization: 0, Score: 0}, {Utilization: 50, Score: 10}}},
		pluginArgs(prof, "StorageScore"))

	// In-tree args still decode to their internal types, defaulted.
	dp, ok := pluginArgs(prof, "DefaultPreemption").(*schedconfig.DefaultPreemptionArgs)
	require.True(t, ok, "DefaultPreemption args: %T", pluginArgs(prof, "DefaultPreemption"))
	assert.Equal(t, int32(20), dp.MinCandidateNodesPercentage)
	assert.Equal(t, int32(100), dp.MinCandidateNodesAbsolute)
	_, ok = pluginArgs(prof, "NodeResourcesFit").(*schedconfig.NodeResourcesFitArgs)
	assert.True(t, ok, "NodeResourcesFit args: %T", pluginArgs(prof, "NodeResourcesFit"))
}

func TestDecodeKubeSchedulerConfigurationAddsDefaultArgs(t *testing.T) {
	// Enabled plugins without a pluginConfig entry get one with defaults.
	cfg := decodeConfig(t, `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: berth-scheduler
  plugins:
    multiPoint:
      enabled:
      - name: LocalVolumeBinding
      - name: StorageScore
  pluginConfig:
  - name: StorageScore
    args: {}
`)
	prof := &cfg.Profiles[0]
	assert.Equal(t, &config.LocalVolumeBindingArgs{BindTimeoutSeconds: 600, BindMode: config.BindModeDirect}, pluginArgs(prof, "LocalVolumeBinding"))
	assert.Equal(t, &config.StorageScoreArgs{Shape: config.DefaultStorageScoreShape()}, pluginArgs(prof, "StorageScore"))
	_, ok := pluginArgs(prof, "VolumeBinding").(*schedconfig.VolumeBindingArgs)
	assert.True(t, ok, "in-tree VolumeBinding args: %T", pluginArgs(prof, "VolumeBinding"))
}

func TestDecodeKubeSchedulerConfigurationStrict(t *testing.T) {
	_, err := decode(t, `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- pluginConfig:
  - name: LocalVolumeBinding
    args:
      bindTimeoutSeconds: 10
      bogus: true
`)
	require.Error(t, err)
	assert.True(t, runtime.IsStrictDecodingError(err), "want a strict decoding error, got %v", err)
	assert.Contains(t, err.Error(), "LocalVolumeBinding")
	assert.Contains(t, err.Error(), `unknown field "bogus"`)

	_, err = decode(t, `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- pluginConfig:
  - name: StorageScore
    args:
      bindTimeoutSeconds: 10
`)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown field "bindTimeoutSeconds"`)

	// Wrong types are plain decoding errors.
	_, err = decode(t, `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- pluginConfig:
  - name: LocalVolumeBinding
    args:
      bindTimeoutSeconds: soon
`)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "LocalVolumeBinding")
}

func TestEncodeKubeSchedulerConfiguration(t *testing.T) {
	// kube-scheduler encodes its configuration (internal → v1) when it logs
	// or writes it; that goes through the plugin arg conversion scheme.
	cfg := decodeConfig(t, profileConfig)
	info, ok := runtime.SerializerInfoForMediaType(kubeschedulerscheme.Codecs.SupportedMediaTypes(), runtime.ContentTypeYAML)
	require.True(t, ok)
	enc := kubeschedulerscheme.Codecs.EncoderForVersion(info.Serializer, kubeschedulerconfigv1.SchemeGroupVersion)
	var buf bytes.Buffer
	require.NoError(t, enc.Encode(cfg, &buf))
	out := buf.String()
	assert.Contains(t, out, "kind: LocalVolumeBindingArgs")
	assert.Contains(t, out, "bindTimeoutSeconds: 120")
	assert.Contains(t, out, "bindMode: PVController")
	assert.Contains(t, out, "kind: StorageScoreArgs")

	// And it decodes back to the same args.
	again := decodeConfig(t, out)
	assert.Equal(t, pluginArgs(&cfg.Profiles[0], "LocalVolumeBinding"), pluginArgs(&again.Profiles[0], "LocalVolumeBinding"))
	assert.Equal(t, pluginArgs(&cfg.Profiles[0], "StorageScore"), pluginArgs(&again.Profiles[0], "StorageScore"))
}
