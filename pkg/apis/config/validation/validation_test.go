package validation

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/berth-dev/berth/pkg/apis/config"
)

// fieldErrors returns the field errors inside an aggregate returned by the
// validation functions.
func fieldErrors(t *testing.T, err error) []*field.Error {
	t.Helper()
	if err == nil {
		return nil
	}
	agg, ok := err.(utilerrors.Aggregate)
	require.True(t, ok, "want an Aggregate, got %T", err)
	var out []*field.Error
	for _, e := range agg.Errors() {
		fe, ok := e.(*field.Error)
		require.True(t, ok, "want *field.Error, got %T", e)
		out = append(out, fe)
	}
	return out
}

type wantErr struct {
	Type  field.ErrorType
	Field string
}

func simplify(errs []*field.Error) []wantErr {
	var out []wantErr
	for _, e := range errs {
		out = append(out, wantErr{Type: e.Type, Field: e.Field})
	}
	return out
}

func TestValidateLocalVolumeBindingArgs(t *testing.T) {
	tests := []struct {
		name string
		args *config.LocalVolumeBindingArgs
		want []wantErr
	}{
		{name: "valid default", args: &config.LocalVolumeBindingArgs{BindTimeoutSeconds: config.DefaultBindTimeoutSeconds, BindMode: config.DefaultBindMode}},
		{name: "valid one second", args: &config.LocalVolumeBindingArgs{BindTimeoutSeconds: 1, BindMode: config.BindModeDirect}},
		{name: "valid Direct", args: &config.LocalVolumeBindingArgs{BindTimeoutSeconds: 600, BindMode: "Direct"}},
		{name: "valid PVController", args: &config.LocalVolumeBindingArgs{BindTimeoutSeconds: 600, BindMode: "PVController"}},
		{
			name: "zero timeout",
			args: &config.LocalVolumeBindingArgs{BindTimeoutSeconds: 0, BindMode: config.BindModeDirect},
			want: []wantErr{{field.ErrorTypeInvalid, "args.bindTimeoutSeconds"}},
		},
		{
			name: "negative timeout",
			args: &config.LocalVolumeBindingArgs{BindTimeoutSeconds: -1, BindMode: config.BindModePVController},
			want: []wantErr{{field.ErrorTypeInvalid, "args.bindTimeoutSeconds"}},
		},
		{
			name: "empty bind mode",
			args: &config.LocalVolumeBindingArgs{BindTimeoutSeconds: 600},
			want: []wantErr{{field.ErrorTypeNotSupported, "args.bindMode"}},
		},
		{
			name: "lowercase bind mode",
			args: &config.LocalVolumeBindingArgs{BindTimeoutSeconds: 600, BindMode: "direct"},
			want: []wantErr{{field.ErrorTypeNotSupported, "args.bindMode"}},
		},
		{
			name: "unknown bind mode",
			args: &config.LocalVolumeBindingArgs{BindTimeoutSeconds: 600, BindMode: "Sometimes"},
			want: []wantErr{{field.ErrorTypeNotSupported, "args.bindMode"}},
		},
		{
			name: "zero timeout and invalid bind mode",
			args: &config.LocalVolumeBindingArgs{BindMode: "pvcontroller"},
			want: []wantErr{
				{field.ErrorTypeInvalid, "args.bindTimeoutSeconds"},
				{field.ErrorTypeNotSupported, "args.bindMode"},
			},
		},
		{
			name: "nil args",
			args: nil,
			want: []wantErr{{field.ErrorTypeRequired, "args"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateLocalVolumeBindingArgs(field.NewPath("args"), tc.args)
			if tc.want == nil {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tc.want, simplify(fieldErrors(t, err)))
		})
	}
}

func TestValidateLocalVolumeBindingArgsNilPath(t *testing.T) {
	err := ValidateLocalVolumeBindingArgs(nil, &config.LocalVolumeBindingArgs{BindTimeoutSeconds: -5, BindMode: config.BindModeDirect})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bindTimeoutSeconds")
	assert.Contains(t, err.Error(), "-5")
}

func TestValidateLocalVolumeBindingArgsBindModeMessage(t *testing.T) {
	err := ValidateLocalVolumeBindingArgs(nil, &config.LocalVolumeBindingArgs{BindTimeoutSeconds: 600, BindMode: "direct"})
	require.Error(t, err)
	assert.Equal(t, `bindMode: Unsupported value: "direct": supported values: "Direct", "PVController"`, err.Error())

	err = ValidateLocalVolumeBindingArgs(field.NewPath("args"), &config.LocalVolumeBindingArgs{BindTimeoutSeconds: 600})
	require.Error(t, err)
	assert.Equal(t, `args.bindMode: Unsupported value: "": supported values: "Direct", "PVController"`, err.Error())
}

func pt(utilization, score int32) config.UtilizationShapePoint {
	return config.UtilizationShapePoint{Utilization: utilization, Score: score}
}

func TestValidateStorageScoreArgs(t *testing.T) {
	type pts = []config.UtilizationShapePoint
	tests := []struct {
		name  string
		shape pts
		want  []wantErr
	}{
		{name: "valid default", shape: config.DefaultStorageScoreShape()},
		{name: "valid single point", shape: pts{{Utilization: 50, Score: 5}}},
		{name: "valid bounds, decreasing scores", shape: pts{pt(0, 10), pt(30, 7), pt(100, 0)}},
		{
			name: "nil shape",
			want: []wantErr{{field.ErrorTypeRequired, "args.shape"}},
		},
		{
			name:  "empty shape",
			shape: pts{},
			want:  []wantErr{{field.ErrorTypeRequired, "args.shape"}},
		},
		{
			name:  "equal utilization",
			shape: pts{pt(0, 0), pt(0, 10)},
			want:  []wantErr{{field.ErrorTypeInvalid, "args.shape[1].utilization"}},
		},
		{
			name:  "decreasing utilization reported once",
			shape: pts{pt(0, 0), pt(50, 5), pt(40, 6), pt(30, 7)},
			want:  []wantErr{{field.ErrorTypeInvalid, "args.shape[2].utilization"}},
		},
		{
			name:  "utilization below range",
			shape: pts{pt(-1, 0), pt(100, 10)},
			want:  []wantErr{{field.ErrorTypeInvalid, "args.shape[0].utilization"}},
		},
		{
			name:  "utilization above range",
			shape: pts{pt(0, 0), pt(101, 10)},
			want:  []wantErr{{field.ErrorTypeInvalid, "args.shape[1].utilization"}},
		},
		{
			name:  "score below range",
			shape: pts{pt(0, -1), pt(100, 10)},
			want:  []wantErr{{field.ErrorTypeInvalid, "args.shape[0].score"}},
		},
		{
			name:  "score above range",
			shape: pts{pt(0, 0), pt(100, 11)},
			want:  []wantErr{{field.ErrorTypeInvalid, "args.shape[1].score"}},
		},
		{
			name:  "several errors",
			shape: pts{pt(200, 0), pt(100, 100)},
			want: []wantErr{
				{field.ErrorTypeInvalid, "args.shape[1].utilization"},
				{field.ErrorTypeInvalid, "args.shape[0].utilization"},
				{field.ErrorTypeInvalid, "args.shape[1].score"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateStorageScoreArgs(field.NewPath("args"), &config.StorageScoreArgs{Shape: tc.shape})
			if tc.want == nil {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tc.want, simplify(fieldErrors(t, err)))
		})
	}
}

func TestValidateStorageScoreArgsNil(t *testing.T) {
	err := ValidateStorageScoreArgs(nil, nil)
	require.Error(t, err)
}

func TestValidateStorageScoreArgsMessage(t *testing.T) {
	err := ValidateStorageScoreArgs(nil, &config.StorageScoreArgs{Shape: []config.UtilizationShapePoint{{Utilization: 10, Score: 1}, {Utilization: 5, Score: 2}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "shape[1].utilization")
	assert.Contains(t, err.Error(), "increasing")
}
