// Package validation validates the internal plugin args of Berth's scheduler
// plugins. The plugins' New functions call these on the (defaulted, internal)
// args they receive, like the in-tree plugins call
// k8s.io/kubernetes/pkg/scheduler/apis/config/validation, so that an invalid
// pluginConfig fails scheduler start-up with a field error.
package validation

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"
	schedconfig "k8s.io/kubernetes/pkg/scheduler/apis/config"

	"github.com/berth-dev/berth/pkg/apis/config"
)

// Shape bounds, as for the in-tree VolumeBinding and
// NodeResourcesFit RequestedToCapacityRatio shapes.
const (
	minUtilization = 0
	maxUtilization = 100
	minScore       = 0
	maxScore       = int32(schedconfig.MaxCustomPriorityScore)
)

// supportedBindModes are the valid LocalVolumeBindingArgs.BindMode values.
var supportedBindModes = []string{string(config.BindModeDirect), string(config.BindModePVController)}

// ValidateLocalVolumeBindingArgs validates LocalVolumeBindingArgs: the bind
// timeout must be positive and the bind mode one of "Direct" and
// "PVController" (the defaulted versioned args never leave it empty). path is
// the field path of the args (may be nil). The result is nil or a
// utilerrors.Aggregate of *field.Error.
func ValidateLocalVolumeBindingArgs(path *field.Path, args *config.LocalVolumeBindingArgs) error {
	var allErrs field.ErrorList
	if args == nil {
		return field.ErrorList{field.Required(path, "LocalVolumeBindingArgs must be set")}.ToAggregate()
	}
	if args.BindTimeoutSeconds <= 0 {
		allErrs = append(allErrs, field.Invalid(path.Child("bindTimeoutSeconds"), args.BindTimeoutSeconds, "must be greater than 0"))
	}
	switch args.BindMode {
	case config.BindModeDirect, config.BindModePVController:
	default:
		allErrs = append(allErrs, field.NotSupported(path.Child("bindMode"), args.BindMode, supportedBindModes))
	}
	return allErrs.ToAggregate()
}

// ValidateStorageScoreArgs validates StorageScoreArgs: the shape must have at
// least one point, utilizations must be within [0, 100] and strictly
// increasing, and scores within [0, 10]. path is the field path of the args
// (may be nil). The result is nil or a utilerrors.Aggregate of *field.Error.
func ValidateStorageScoreArgs(path *field.Path, args *config.StorageScoreArgs) error {
	if args == nil {
		return field.ErrorList{field.Required(path, "StorageScoreArgs must be set")}.ToAggregate()
	}
	return validateShape(args.Shape, path.Child("shape")).ToAggregate()
}

// validateShape mirrors validateFunctionShape of the in-tree validation.
func validateShape(shape []config.UtilizationShapePoint, path *field.Path) field.ErrorList {
	var allErrs field.ErrorList

	if len(shape) == 0 {
		return append(allErrs, field.Required(path, "at least one point must be specified"))
	}

	for i := 1; i < len(shape); i++ {
		if shape[i-1].Utilization >= shape[i].Utilization {
			allErrs = append(allErrs, field.Invalid(path.Index(i).Child("utilization"), shape[i].Utilization, "values must be sorted in strictly increasing order"))
			break
		}
	}

	for i, point := range shape {
		if point.Utilization < minUtilization || point.Utilization > maxUtilization {
			msg := fmt.Sprintf("not in valid range [%d, %d]", minUtilization, maxUtilization)
			allErrs = append(allErrs, field.Invalid(path.Index(i).Child("utilization"), point.Utilization, msg))
		}
		if point.Score < minScore || point.Score > maxScore {
			msg := fmt.Sprintf("not in valid range [%d, %d]", minScore, maxScore)
			allErrs = append(allErrs, field.Invalid(path.Index(i).Child("score"), point.Score, msg))
		}
	}

	return allErrs
}
