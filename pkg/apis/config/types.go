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

	// BindTimeoutSeconds is how long PreBind waits for binds that others
	// complete (the PV controller with bindMode PVController, a provisioner
	// for dynamically provisioned claims) before it reverts them and fails
	// the pod's binding cycle. Must be positive. The versioned type defaults it to
	// DefaultBindTimeoutSeconds (600).
	BindTimeoutSeconds int64

	// BindMode says who completes a bind after PreBind has reserved a PV for
	// a claim by writing the PV's claimRef. The versioned type defaults it to
	// DefaultBindMode (BindModeDirect); validation rejects any other value
	// than BindModeDirect and BindModePVController, including "".
	BindMode BindMode
}

// BindMode says who completes a bind after PreBind has reserved a PV for a
// claim by writing the PV's claimRef.
//
// With BindModeDirect (the default), PreBind itself completes it with the
// same writes and annotations the PV controller's bind makes (PV status
// Bound; the claim's spec.volumeName with pv.kubernetes.io/bind-completed and
// pv.kubernetes.io/bound-by-controller; claim status Bound), in the
// scheduler's parallel binding goroutines, so binding throughput does not
// depend on the PV controller's single claim worker.
//
// With BindModePVController, PreBind writes only the claimRef and waits (up
// to BindTimeoutSeconds) for the PV controller to complete the bind, like the
// in-tree VolumeBinding plugin.
//
// Claims that are dynamically provisioned are always completed by the
// provisioner and the PV controller; PreBind waits for them in both modes.
type BindMode string

const (
	// BindModeDirect: PreBind completes the binds of pre-provisioned PVs
	// itself.
	BindModeDirect BindMode = "Direct"
	// BindModePVController: PreBind writes the claimRef and waits for the PV
	// controller to complete the bind.
	BindModePVController BindMode = "PVController"
)

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
