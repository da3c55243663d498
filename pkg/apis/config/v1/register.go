package v1

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the group of the versioned plugin args: the kube-scheduler
// configuration group, where the scheduler looks up "<PluginName>Args".
const GroupName = "kubescheduler.config.k8s.io"

// SchemeGroupVersion is the group version of the versioned plugin args.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1"}

var (
	// SchemeBuilder registers the versioned types, their defaulting functions
	// and their conversions to and from the internal types.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes, RegisterDefaults, RegisterConversions)
	// AddToScheme adds the versioned types, defaulting and conversions to a
	// scheme. The internal types must be added too (config.AddToScheme) for
	// conversions to be usable.
	AddToScheme = SchemeBuilder.AddToScheme
)

// addKnownTypes registers the versioned types under SchemeGroupVersion. Their
// kinds are their Go type names: LocalVolumeBindingArgs and StorageScoreArgs.
func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(SchemeGroupVersion,
		&LocalVolumeBindingArgs{},
		&StorageScoreArgs{},
	)
	return nil
}
