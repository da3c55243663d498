package v1

import (
	"github.com/berth-dev/berth/pkg/apis/config"
)

// SetDefaults_LocalVolumeBindingArgs defaults BindTimeoutSeconds to
// config.DefaultBindTimeoutSeconds (600) when it is not set. An explicit
// value, even an invalid one, is kept for validation to reject.
func SetDefaults_LocalVolumeBindingArgs(obj *LocalVolumeBindingArgs) {
	if obj.BindTimeoutSeconds == nil {
		v := config.DefaultBindTimeoutSeconds
		obj.BindTimeoutSeconds = &v
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
