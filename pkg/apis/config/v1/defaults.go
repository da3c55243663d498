package v1

import (
	"github.com/berth-dev/berth/pkg/apis/config"
)

// SetDefaults_LocalVolumeBindingArgs defaults BindTimeoutSeconds to
// config.DefaultBindTimeoutSeconds (600) and BindMode to
// config.DefaultBindMode ("Direct") when they are not set. An explicit value,
// even an invalid one (including ""), is kept for validation to reject.
func SetDefaults_LocalVolumeBindingArgs(obj *LocalVolumeBindingArgs) {
	if obj.BindTimeoutSeconds == nil {
		v := config.DefaultBindTimeoutSeconds
		obj.BindTimeoutSeconds = &v
	}
	if obj.BindMode == nil {
		v := string(config.DefaultBindMode)
		obj.BindMode = &v
	}
}

// SetDefaults_StorageScoreArgs defaults an empty Shape to
// config.DefaultStorageScoreShape(): [{0, 0}, {100, 10}], fuller is better.
func SetDefaults_StorageScoreArgs(obj *StorageScoreArgs) {
	if len(obj.Shape) == 0 {
		def := config.DefaultStorageScoreShape()
		obj.Shape = make([]UtilizationShapePoint, len(def))
		for i, p := range def {
			obj.Shape[i] = UtilizationShapePoint{Utilization: p.Utilization, Score: p.Score}
		}
	}
}
