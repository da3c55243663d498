// Code written by hand in the style of defaulter-gen; keep it in sync with
// defaults.go.

package v1

import (
	runtime "k8s.io/apimachinery/pkg/runtime"
)

// RegisterDefaults adds the defaulting functions of the versioned plugin args
// to the given scheme, so that scheme.Default (which the kube-scheduler calls
// on every pluginConfig args) applies them.
func RegisterDefaults(scheme *runtime.Scheme) error {
	scheme.AddTypeDefaultingFunc(&LocalVolumeBindingArgs{}, func(obj interface{}) {
		SetObjectDefaults_LocalVolumeBindingArgs(obj.(*LocalVolumeBindingArgs))
	})
	scheme.AddTypeDefaultingFunc(&StorageScoreArgs{}, func(obj interface{}) {
		SetObjectDefaults_StorageScoreArgs(obj.(*StorageScoreArgs))
	})
	return nil
}

// SetObjectDefaults_LocalVolumeBindingArgs applies all defaults of
// LocalVolumeBindingArgs.
func SetObjectDefaults_LocalVolumeBindingArgs(in *LocalVolumeBindingArgs) {
	SetDefaults_LocalVolumeBindingArgs(in)
}

// SetObjectDefaults_StorageScoreArgs applies all defaults of StorageScoreArgs.
func SetObjectDefaults_StorageScoreArgs(in *StorageScoreArgs) {
	SetDefaults_StorageScoreArgs(in)
}
