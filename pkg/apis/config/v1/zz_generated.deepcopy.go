// Code written by hand in the style of deepcopy-gen; keep it in sync with
// types.go.

package v1

import (
	runtime "k8s.io/apimachinery/pkg/runtime"
)

// DeepCopyInto copies the receiver into out. in must be non-nil.
func (in *LocalVolumeBindingArgs) DeepCopyInto(out *LocalVolumeBindingArgs) {
	*out = *in
	out.TypeMeta = in.TypeMeta
	if in.BindTimeoutSeconds != nil {
		in, out := &in.BindTimeoutSeconds, &out.BindTimeoutSeconds
		*out = new(int64)
		**out = **in
	}
	if in.BindMode != nil {
		in, out := &in.BindMode, &out.BindMode
		*out = new(string)
		**out = **in
	}
}

// DeepCopy returns a deep copy of the receiver, or nil if it is nil.
func (in *LocalVolumeBindingArgs) DeepCopy() *LocalVolumeBindingArgs {
	if in == nil {
		return nil
	}
	out := new(LocalVolumeBindingArgs)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject returns a deep copy of the receiver as a runtime.Object.
func (in *LocalVolumeBindingArgs) DeepCopyObject() runtime.Object {
	if c := in.DeepCopy(); c != nil {
		return c
	}
	return nil
}

// DeepCopyInto copies the receiver into out. in must be non-nil.
func (in *StorageScoreArgs) DeepCopyInto(out *StorageScoreArgs) {
	*out = *in
	out.TypeMeta = in.TypeMeta
	if in.Shape != nil {
		in, out := &in.Shape, &out.Shape
		*out = make([]UtilizationShapePoint, len(*in))
		copy(*out, *in)
	}
}

// DeepCopy returns a deep copy of the receiver, or nil if it is nil.
func (in *StorageScoreArgs) DeepCopy() *StorageScoreArgs {
	if in == nil {
		return nil
	}
	out := new(StorageScoreArgs)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject returns a deep copy of the receiver as a runtime.Object.
func (in *StorageScoreArgs) DeepCopyObject() runtime.Object {
	if c := in.DeepCopy(); c != nil {
		return c
	}
	return nil
}

// DeepCopyInto copies the receiver into out. in must be non-nil.
func (in *UtilizationShapePoint) DeepCopyInto(out *UtilizationShapePoint) {
	*out = *in
}

// DeepCopy returns a deep copy of the receiver, or nil if it is nil.
func (in *UtilizationShapePoint) DeepCopy() *UtilizationShapePoint {
	if in == nil {
		return nil
	}
	out := new(UtilizationShapePoint)
	in.DeepCopyInto(out)
	return out
}
