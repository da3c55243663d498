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
			want: &LocalVolumeBindingArgs{BindTimeoutSeconds: ptr.To[int64](600)},
		},
		{
			name: "LocalVolumeBindingArgs explicit value kept",
			in:   &LocalVolumeBindingArgs{BindTimeoutSeconds: ptr.To[int64](30)},
			want: &LocalVolumeBindingArgs{BindTimeoutSeconds: ptr.To[int64](30)},
		},
		{
			name: "LocalVolumeBindingArgs invalid explicit value kept for validation",
			in:   &LocalVolumeBindingArgs{BindTimeoutSeconds: ptr.To[int64](0)},
			want: &LocalVolumeBindingArgs{BindTimeoutSeconds: ptr.To[int64](0)},
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

	lvb := &LocalVolumeBindingArgs{BindTimeoutSeconds: ptr.To[int64](42)}
	internal, err := s.ConvertToVersion(lvb, config.SchemeGroupVersion)
	require.NoError(t, err)
	require.IsType(t, &config.LocalVolumeBindingArgs{}, internal)
	assert.Equal(t, int64(42), internal.(*config.LocalVolumeBindingArgs).BindTimeoutSeconds)
	external, err := s.ConvertToVersion(internal, SchemeGroupVersion)
	require.NoError(t, err)
	require.IsType(t, &LocalVolumeBindingArgs{}, external)
	assert.Equal(t, ptr.To[int64](42), external.(*LocalVolumeBindingArgs).BindTimeoutSeconds)
	assert.Equal(t, SchemeGroupVersion.WithKind("LocalVolumeBindingArgs"), external.GetObjectKind().GroupVersionKind())

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
	lvb := &LocalVolumeBindingArgs{BindTimeoutSeconds: ptr.To[int64](5)}
	c := lvb.DeepCopyObject().(*LocalVolumeBindingArgs)
	assert.Equal(t, lvb, c)
	*c.BindTimeoutSeconds = 6
	assert.Equal(t, int64(5), *lvb.BindTimeoutSeconds)

	ss := &StorageScoreArgs{Shape: []UtilizationShapePoint{{Utilization: 1, Score: 2}}}
	sc := ss.DeepCopyObject().(*StorageScoreArgs)
	assert.Equal(t, ss, sc)
	sc.Shape[0].Score = 3
	assert.Equal(t, int32(2), ss.Shape[0].Score)
}
