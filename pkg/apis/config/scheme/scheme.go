// Package scheme registers Berth's plugin args into the kube-scheduler scheme.
//
// Importing it (for side effects; pkg/plugins does) makes a
// KubeSchedulerConfiguration's pluginConfig entries named LocalVolumeBinding
// and StorageScore decode like in-tree plugin args: their args are decoded
// strictly as kubescheduler.config.k8s.io/v1 LocalVolumeBindingArgs /
// StorageScoreArgs, defaulted, and converted to the internal types of
// github.com/berth-dev/berth/pkg/apis/config, which the plugins' New functions
// receive. A profile enabling one of the plugins without a pluginConfig entry
// gets one with the defaults.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	kubeschedulerscheme "k8s.io/kubernetes/pkg/scheduler/apis/config/scheme"
	kubeschedulerconfigv1 "k8s.io/kubernetes/pkg/scheduler/apis/config/v1"

	"github.com/berth-dev/berth/pkg/apis/config"
	configv1 "github.com/berth-dev/berth/pkg/apis/config/v1"
)

func init() {
	// The scheme behind kube-scheduler's config file decoding
	// (scheme.Codecs.UniversalDecoder()): pluginConfig args are decoded with
	// it, by kind "<PluginName>Args" in group kubescheduler.config.k8s.io/v1.
	utilruntime.Must(AddToScheme(kubeschedulerscheme.Scheme))
	// The scheme kube-scheduler defaults typed plugin args with and converts
	// them to internal types with (and back, when it logs or writes its
	// configuration). Without it the conversion to internal fails.
	utilruntime.Must(AddToScheme(kubeschedulerconfigv1.GetPluginArgConversionScheme()))
}

// AddToScheme adds the internal and v1 plugin args types, with the v1
// defaulting functions and the conversions between them, to a scheme.
func AddToScheme(scheme *runtime.Scheme) error {
	if err := config.AddToScheme(scheme); err != nil {
		return err
	}
	return configv1.AddToScheme(scheme)
}
