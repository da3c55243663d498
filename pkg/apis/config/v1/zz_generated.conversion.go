// Code written by hand in the style of conversion-gen; keep it in sync with
// types.go here and in pkg/apis/config.

package v1

import (
	conversion "k8s.io/apimachinery/pkg/conversion"
	runtime "k8s.io/apimachinery/pkg/runtime"

	config "github.com/berth-dev/berth/pkg/apis/config"
)

// RegisterConversions adds the conversion functions between the versioned
// and the internal plugin args to the given scheme.
func RegisterConversions(s *runtime.Scheme) error {
	if err := s.AddGeneratedConversionFunc((*LocalVolumeBindingArgs)(nil), (*config.LocalVolumeBindingArgs)(nil), func(a, b interface{}, scope conversion.Scope) error {
		return Convert_v1_LocalVolumeBindingArgs_To_config_LocalVolumeBindingArgs(a.(*LocalVolumeBindingArgs), b.(*config.LocalVolumeBindingArgs), scope)
	}); err != nil {
		return err
	}
	if err := s.AddGeneratedConversionFunc((*config.LocalVolumeBindingArgs)(nil), (*LocalVolumeBindingArgs)(nil), func(a, b interface{}, scope conversion.Scope) error {
		return Convert_config_LocalVolumeBindingArgs_To_v1_LocalVolumeBindingArgs(a.(*config.LocalVolumeBindingArgs), b.(*LocalVolumeBindingArgs), scope)
	}); err != nil {
		return err
	}
	if err := s.AddGeneratedConversionFunc((*StorageScoreArgs)(nil), (*config.StorageScoreArgs)(nil), func(a, b interface{}, scope conversion.Scope) error {
		return Convert_v1_StorageScoreArgs_To_config_StorageScoreArgs(a.(*StorageScoreArgs), b.(*config.StorageScoreArgs), scope)
	}); err != nil {
		return err
	}
	if err := s.AddGeneratedConversionFunc((*config.StorageScoreArgs)(nil), (*StorageScoreArgs)(nil), func(a, b interface{}, scope conversion.Scope) error {
		return Convert_config_StorageScoreArgs_To_v1_StorageScoreArgs(a.(*config.StorageScoreArgs), b.(*StorageScoreArgs), scope)
	}); err != nil {
		return err
	}
	if err := s.AddGeneratedConversionFunc((*UtilizationShapePoint)(nil), (*config.UtilizationShapePoint)(nil), func(a, b interface{}, scope conversion.Scope) error {
		return Convert_v1_UtilizationShapePoint_To_config_UtilizationShapePoint(a.(*UtilizationShapePoint), b.(*config.UtilizationShapePoint), scope)
	}); err != nil {
		return err
	}
	if err := s.AddGeneratedConversionFunc((*config.UtilizationShapePoint)(nil), (*UtilizationShapePoint)(nil), func(a, b interface{}, scope conversion.Scope) error {
		return Convert_config_UtilizationShapePoint_To_v1_UtilizationShapePoint(a.(*config.UtilizationShapePoint), b.(*UtilizationShapePoint), scope)
	}); err != nil {
		return err
	}
	return nil
}

// Convert_v1_LocalVolumeBindingArgs_To_config_LocalVolumeBindingArgs converts
// versioned LocalVolumeBindingArgs to internal ones. A nil BindTimeoutSeconds
// or BindMode (args not defaulted) becomes 0 or "", which validation rejects.
func Convert_v1_LocalVolumeBindingArgs_To_config_LocalVolumeBindingArgs(in *LocalVolumeBindingArgs, out *config.LocalVolumeBindingArgs, s conversion.Scope) error {
	if in.BindTimeoutSeconds != nil {
		out.BindTimeoutSeconds = *in.BindTimeoutSeconds
	} else {
		out.BindTimeoutSeconds = 0
	}
	if in.BindMode != nil {
		out.BindMode = config.BindMode(*in.BindMode)
	} else {
		out.BindMode = ""
	}
	return nil
}

// Convert_config_LocalVolumeBindingArgs_To_v1_LocalVolumeBindingArgs converts
// internal LocalVolumeBindingArgs to versioned ones.
func Convert_config_LocalVolumeBindingArgs_To_v1_LocalVolumeBindingArgs(in *config.LocalVolumeBindingArgs, out *LocalVolumeBindingArgs, s conversion.Scope) error {
	v := in.BindTimeoutSeconds
	out.BindTimeoutSeconds = &v
	m := string(in.BindMode)
	out.BindMode = &m
	return nil
}

// Convert_v1_StorageScoreArgs_To_config_StorageScoreArgs converts versioned
// StorageScoreArgs to internal ones.
func Convert_v1_StorageScoreArgs_To_config_StorageScoreArgs(in *StorageScoreArgs, out *config.StorageScoreArgs, s conversion.Scope) error {
	if in.Shape == nil {
		out.Shape = nil
		return nil
	}
	out.Shape = make([]config.UtilizationShapePoint, len(in.Shape))
	for i := range in.Shape {
		if err := Convert_v1_UtilizationShapePoint_To_config_UtilizationShapePoint(&in.Shape[i], &out.Shape[i], s); err != nil {
			return err
		}
	}
	return nil
}

// Convert_config_StorageScoreArgs_To_v1_StorageScoreArgs converts internal
// StorageScoreArgs to versioned ones.
func Convert_config_StorageScoreArgs_To_v1_StorageScoreArgs(in *config.StorageScoreArgs, out *StorageScoreArgs, s conversion.Scope) error {
	if in.Shape == nil {
		out.Shape = nil
		return nil
	}
	out.Shape = make([]UtilizationShapePoint, len(in.Shape))
	for i := range in.Shape {
		if err := Convert_config_UtilizationShapePoint_To_v1_UtilizationShapePoint(&in.Shape[i], &out.Shape[i], s); err != nil {
			return err
		}
	}
	return nil
}

// Convert_v1_UtilizationShapePoint_To_config_UtilizationShapePoint converts a
// versioned shape point to an internal one.
func Convert_v1_UtilizationShapePoint_To_config_UtilizationShapePoint(in *UtilizationShapePoint, out *config.UtilizationShapePoint, s conversion.Scope) error {
	out.Utilization = in.Utilization
	out.Score = in.Score
	return nil
}

// Convert_config_UtilizationShapePoint_To_v1_UtilizationShapePoint converts an
// internal shape point to a versioned one.
func Convert_config_UtilizationShapePoint_To_v1_UtilizationShapePoint(in *config.UtilizationShapePoint, out *UtilizationShapePoint, s conversion.Scope) error {
	out.Utilization = in.Utilization
	out.Score = in.Score
	return nil
}
