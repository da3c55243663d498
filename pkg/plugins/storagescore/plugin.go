package storagescore

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime"
	fwk "k8s.io/kube-scheduler/framework"
)

// Name is the plugin's name in profiles and pluginConfig.
const Name = "StorageScore"

// StorageScore is a placeholder until the plugin lands.
type StorageScore struct{}

// Name returns the plugin name.
func (pl *StorageScore) Name() string { return Name }

// New builds the plugin.
func New(ctx context.Context, args runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
	return &StorageScore{}, nil
}
