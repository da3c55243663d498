package v1

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/berth-dev/berth/pkg/apis/config"
)

func newScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	require.NoError(t, config.AddToScheme(s))
	require.NoError(t, AddToScheme(s))
	return s
}

var defaultShape = []UtilizationShapePoint{{Utilization: 0, Score: 0}, {Utilization: 100, Score: 10}}

func TestDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   runtime.Object
		want runtime.Object
	}{
		{
			name: "LocalVolumeBindingArgs empty",
			in:   &LocalVolumeBindingArgs{},
			want: &LocalVolumeBindingArgs{BindTimeoutSeconds: ptr.To[int64](600), BindMode: ptr.To("Direct")},
		},
		{
			name: "LocalVolumeBindingArgs explicit value kept",
			in:   &LocalVolumeBindingArgs{BindTimeoutSeconds: ptr.To[int64](30)},
			want: &LocalVolumeBindingArgs{BindTimeoutSeconds: ptr.To[int64](30), BindMode: ptr.To("Direct")},
		},
		{
			name: "LocalVolumeBindingArgs invalid explicit value kept for validation",
			in:   &LocalVolumeBindingArgs{BindTimeoutSeconds: ptr.To[int64](0)},
			want: &LocalVolumeBindingArgs{BindTimeoutSeconds: ptr.To[int64](0), BindMode: ptr.To("Direct")},
		},
		{
			name: "LocalVolumeBindingArgs explicit PVController kept",
			in:   &LocalVolumeBindingArgs{BindMode: ptr.To("PVController")},
			want: &LocalVolumeBindingArgs{BindTimeoutSeconds: ptr.To[int64](600), BindMode: ptr.To("PVController")},
		},
		{
			name: "LocalVolumeBindingArgs explicit Direct kept",
			in:   &LocalVolumeBindingArgs{BindTimeoutSeconds: ptr.To[int64](30), BindMode: ptr.To("Direct")},
			want: &LocalVolumeBindingArgs{BindTimeoutSeconds: ptr.To[int64](30), BindMode: ptr.To("Direct")},
		},
		{
			name: "LocalVolumeBindingArgs invalid explicit bindMode kept for validation",
			in:   &LocalVolumeBindingArgs{BindMode: ptr.To("")},
			want: &LocalVolumeBindingArgs{BindTimeoutSeconds: ptr.To[int64](600), BindMode: ptr.To("")},
		},
		{
			name: "StorageScoreArgs empty",
			in:   &StorageScoreArgs{},
			want: &StorageScoreArgs{Shape: defaultShape},
		},
		{
			name: "StorageScoreArgs empty non-nil shape",
			in:   &StorageScoreArgs{Shape: []UtilizationShapePoint{}},
			want: &StorageScoreArgs{Shape: defaultShape},
		},
		{
			name: "StorageScoreArgs explicit shape kept",
			in:   &StorageScoreArgs{Shape: []UtilizationShapePoint{{Utilization: 0, Score: 10}, {Utilization: 100, Score: 0}}},
			want: &StorageScoreArgs{Shape: []UtilizationShapePoint{{Utilization: 0, Score: 10}, {Utilization: 100, Score: 0}}},
		},
	}
	s := newScheme(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in.DeepCopyObject()
			s.Default(got)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestDefaultShapeNotShared(t *testing.T) {
	a, b := &StorageScoreArgs{}, &StorageScoreArgs{}
	SetObjectDefaults_StorageScoreArgs(a)
	SetObjectDefaults_StorageScoreArgs(b)
	a.Shape[1].Score = 3
	assert.Equal(t, int32(10), b.Shape[1].Score)
}

func TestConversionRoundTrip(t *testing.T) {
	s := newScheme(t)

	lvb := &LocalVolumeBindingArgs{BindTimeoutSeconds: ptr.To[int64](42), BindMode: ptr.To("PVController")}
	internal, err := s.ConvertToVersion(lvb, config.SchemeGroupVersion)
	require.NoError(t, err)
	require.IsType(t, &config.LocalVolumeBindingArgs{}, internal)
	assert.Equal(t, int64(42), internal.(*config.LocalVolumeBindingArgs).BindTimeoutSeconds)
	assert.Equal(t, config.BindModePVController, internal.(*config.LocalVolumeBindingArgs).BindMode)
	external, err := s.ConvertToVersion(internal, SchemeGroupVersion)
	require.NoError(t, err)
	require.IsType(t, &LocalVolumeBindingArgs{}, external)
	assert.Equal(t, ptr.To[int64](42), external.(*LocalVolumeBindingArgs).BindTimeoutSeconds)
	assert.Equal(t, ptr.To("PVController"), external.(*LocalVolumeBindingArgs).BindMode)
	assert.Equal(t, SchemeGroupVersion.WithKind("LocalVolumeBindingArgs"), external.GetObjectKind().GroupVersionKind())

	// Internal → versioned → internal keeps every bind mode, and an
	// undefaulted (nil) versioned bindMode becomes "" for validation to
	// reject.
	for _, mode := range []config.BindMode{config.BindModeDirect, config.BindModePVController, "direct", ""} {
		in := &config.LocalVolumeBindingArgs{BindTimeoutSeconds: 7, BindMode: mode}
		ext := &LocalVolumeBindingArgs{}
		require.NoError(t, s.Convert(in, ext, nil))
		assert.Equal(t, ptr.To(string(mode)), ext.BindMode)
		back := &config.LocalVolumeBindingArgs{}
		require.NoError(t, s.Convert(ext, back, nil))
		assert.Equal(t, in, back, "round trip of bind mode %q", mode)
	}
	undefaulted := &config.LocalVolumeBindingArgs{BindMode: config.BindModePVController}
	require.NoError(t, s.Convert(&LocalVolumeBindingArgs{}, undefaulted, nil))
	assert.Equal(t, &config.LocalVolumeBindingArgs{}, undefaulted)

	ss := &StorageScoreArgs{Shape: []UtilizationShapePoint{{Utilization: 10, Score: 1}, {Utilization: 90, Score: 9}}}
	internal, err = s.ConvertToVersion(ss, config.SchemeGroupVersion)
	require.NoError(t, err)
	require.IsType(t, &config.StorageScoreArgs{}, internal)
	assert.Equal(t, []config.UtilizationShapePoint{{Utilization: 10, Score: 1}, {Utilization: 90, Score: 9}}, internal.(*config.StorageScoreArgs).Shape)
	external, err = s.ConvertToVersion(internal, SchemeGroupVersion)
	require.NoError(t, err)
	require.IsType(t, &StorageScoreArgs{}, external)
	assert.Equal(t, ss.Shape, external.(*StorageScoreArgs).Shape)
	assert.Equal(t, SchemeGroupVersion.WithKind("StorageScoreArgs"), external.GetObjectKind().GroupVersionKind())
}

func TestKinds(t *testing.T) {
	s := newScheme(t)
	for _, kind := range []string{"LocalVolumeBindingArgs", "StorageScoreArgs"} {
		assert.True(t, s.Recognizes(SchemeGroupVersion.WithKind(kind)), kind)
		assert.True(t, s.Recognizes(config.SchemeGroupVersion.WithKind(kind)), kind)
	}
	assert.Equal(t, "kubescheduler.config.k8s.io", SchemeGroupVersion.Group)
}

func TestDeepCopy(t *testing.T) {
	lvb := &LocalVolumeBindingArgs{BindTimeoutSeconds: ptr.To[int64](5), BindMode: ptr.To("PVController")}
	c := lvb.DeepCopyObject().(*LocalVolumeBindingArgs)
	assert.Equal(t, lvb, c)
	*c.BindTimeoutSeconds = 6
	assert.Equal(t, int64(5), *lvb.BindTimeoutSeconds)
	require.NotSame(t, lvb.BindMode, c.BindMode)
	*c.BindMode = "Direct"
	assert.Equal(t, "PVController", *lvb.BindMode)
	assert.Nil(t, (&LocalVolumeBindingArgs{}).DeepCopy().BindMode)

	ss := &StorageScoreArgs{Shape: []UtilizationShapePoint{{Utilization: 1, Score: 2}}}
	sc := ss.DeepCopyObject().(*StorageScoreArgs)
	assert.Equal(t, ss, sc)
	sc.Shape[0].Score = 3
	assert.Equal(t, int32(2), ss.Shape[0].Score)
}
