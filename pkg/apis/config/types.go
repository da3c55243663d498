// Package config holds the internal (hub) versions of Berth's scheduler plugin
// arguments. They are registered into the kube-scheduler configuration scheme
// (group kubescheduler.config.k8s.io) so that a KubeSchedulerConfiguration's
// pluginConfig decodes, defaults and validates them like in-tree plugin args.
package config

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// LocalVolumeBindingArgs holds the arguments of the LocalVolumeBinding plugin.
type LocalVolumeBindingArgs struct {
	metav1.TypeMeta

	// BindTimeoutSeconds is how long PreBind waits for the PV controller to
	// complete the binds it started before it reverts them and fails the pod's
	// binding cycle. Must be positive. The versioned type defaults it to
	// DefaultBindTimeoutSeconds (600).
	BindTimeoutSeconds int64
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// StorageScoreArgs holds the arguments of the StorageScore plugin.
type StorageScoreArgs struct {
	metav1.TypeMeta

	// Shape maps storage utilization (percent of the chosen volumes' capacity
	// that the pod's claims request, 0-100) to a score (0-10). Points must
	// be sorted by strictly increasing utilization; scores between points are
	// interpolated linearly. The versioned type defaults an empty shape to
	// DefaultStorageScoreShape() ([{0,0},{100,10}]: fuller is better).
	Shape []UtilizationShapePoint
}

// UtilizationShapePoint is one point of a utilization→score curve.
type UtilizationShapePoint struct {
	// Utilization in percent, 0-100.
	Utilization int32
	// Score, 0-10 (MaxCustomPriorityScore); scaled to 0-100 when scoring.
	Score int32
}
