package volumebinding

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime"
	fwk "k8s.io/kube-scheduler/framework"
)

// Name is the plugin's name in profiles and pluginConfig.
const Name = "LocalVolumeBinding"

// LocalVolumeBinding is a placeholder until the plugin lands.
type LocalVolumeBinding struct{}

// Name returns the plugin name.
func (pl *LocalVolumeBinding) Name() string { return Name }

// New builds the plugin.
func New(ctx context.Context, args runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	return &LocalVolumeBinding{}, nil
}
