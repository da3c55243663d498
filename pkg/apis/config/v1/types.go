package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// LocalVolumeBindingArgs holds the arguments of the LocalVolumeBinding plugin.
type LocalVolumeBindingArgs struct {
	metav1.TypeMeta `json:",inline"`

	// BindTimeoutSeconds is how long PreBind waits for binds that others
	// complete (the PV controller with bindMode PVController, a provisioner
	// for dynamically provisioned claims) before it reverts them and fails the
	// pod's binding cycle. Must be positive. Defaults to 600.
	// +optional
	BindTimeoutSeconds *int64 `json:"bindTimeoutSeconds,omitempty"`

	// BindMode says who completes a bind after PreBind has reserved a PV for
	// a claim by writing the PV's claimRef. Valid values are "Direct" and
	// "PVController". Defaults to "Direct".
	//
	// Direct: PreBind itself completes it with the same writes and
	// annotations the PV controller's bind makes (PV status Bound; the
	// claim's spec.volumeName with pv.kubernetes.io/bind-completed and
	// pv.kubernetes.io/bound-by-controller; claim status Bound), in the
	// scheduler's parallel binding goroutines, so binding throughput does not
	// depend on the PV controller's single claim worker.
	//
	// PVController: PreBind writes only the claimRef and waits (up to
	// bindTimeoutSeconds) for the PV controller to complete the bind, like
	// the in-tree VolumeBinding plugin.
	//
	// Claims that are dynamically provisioned are always completed by the
	// provisioner and the PV controller; PreBind waits for them in both
	// modes.
	// +optional
	BindMode *string `json:"bindMode,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// StorageScoreArgs holds the arguments of the StorageScore plugin.
type StorageScoreArgs struct {
	metav1.TypeMeta `json:",inline"`

	// Shape maps storage utilization (percent of the chosen volumes' capacity
	// that the pod's claims request, 0 to 100) to a score (0 to 10). Points
	// must be sorted by strictly increasing utilization; scores between
	// points are interpolated linearly. Defaults to [{utilization: 0, score: 0},
	// {utilization: 100, score: 10}]: the fuller the volumes, the higher
	// the score, so the tightest fit wins.
	// +optional
	// +listType=atomic
	Shape []UtilizationShapePoint `json:"shape,omitempty"`
}

// UtilizationShapePoint is one point of a utilization→score curve.
type UtilizationShapePoint struct {
	// Utilization (x axis) in percent. Valid values are 0 to 100.
	Utilization int32 `json:"utilization"`
	// Score (y axis) given at this utilization. Valid values are 0 to 10.
	Score int32 `json:"score"`
}
