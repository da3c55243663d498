package config

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group of Berth's plugin args. It is the group of the
// kube-scheduler configuration (and of the in-tree plugin args), because the
// scheduler looks plugin args up as kind "<PluginName>Args" in that group.
const GroupName = "kubescheduler.config.k8s.io"

// SchemeGroupVersion is the internal (hub) group version of the plugin args.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: runtime.APIVersionInternal}

var (
	// SchemeBuilder registers the internal plugin args types.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds the internal plugin args types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// addKnownTypes registers the internal types under SchemeGroupVersion.
func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(SchemeGroupVersion,
		&LocalVolumeBindingArgs{},
		&StorageScoreArgs{},
	)
	return nil
}
