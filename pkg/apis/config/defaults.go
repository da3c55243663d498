package config

// Default values of the plugin args. The versioned defaulting functions in
// pkg/apis/config/v1 apply them; plugins may use them when they are built
// without args (e.g. in unit tests).
const (
	// DefaultBindTimeoutSeconds is the default
	// LocalVolumeBindingArgs.BindTimeoutSeconds (same as the in-tree
	// VolumeBinding plugin).
	DefaultBindTimeoutSeconds int64 = 600

	// DefaultBindMode is the default LocalVolumeBindingArgs.BindMode: PreBind
	// completes the binds of pre-provisioned PVs itself.
	DefaultBindMode = BindModeDirect
)

// DefaultStorageScoreShape returns the default StorageScoreArgs.Shape: score 0
// for an empty volume and MaxCustomPriorityScore (10) for a full one, so the
// fuller the chosen volumes end up, the better the node scores ("tightest fit
// wins", keeping large volumes free for large claims). The returned slice is a
// fresh copy that callers may modify.
func DefaultStorageScoreShape() []UtilizationShapePoint {
	return []UtilizationShapePoint{
		{Utilization: 0, Score: 0},
		{Utilization: 100, Score: 10},
	}
}
