package volumebinding

import (
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/storage/volume"
	csiplugins "k8s.io/csi-translation-lib/plugins"
	"k8s.io/klog/v2"
)

// translateForNode returns the CSI translation of an in-tree PV whose plugin
// is migrated to CSI on the node (as the in-tree VolumeBinding plugin does),
// so its NodeAffinity uses the CSI driver's topology keys; otherwise the PV
// itself.
func (pl *LocalVolumeBinding) translateForNode(pv *v1.PersistentVolume, node *v1.Node) *v1.PersistentVolume {
	if !pl.translator.IsPVMigratable(pv) {
		return pv
	}
	name, err := pl.translator.GetInTreePluginNameFromSpec(pv, nil)
	if err != nil || !migratedPlugin(name) {
		return pv
	}
	csiNode, err := pl.csiNodes.Get(node.Name)
	if err != nil {
		return pv
	}
	migrated := strings.Split(csiNode.Annotations[v1.MigratedPluginsAnnotationKey], ",")
	if !slices.Contains(migrated, name) {
		return pv
	}
	out, err := pl.translator.TranslateInTreePVToCSI(klog.Background(), pv)
	if err != nil {
		return pv
	}
	return out
}

func migratedPlugin(name string) bool {
	switch name {
	case csiplugins.AWSEBSInTreePluginName, csiplugins.GCEPDInTreePluginName,
		csiplugins.AzureDiskInTreePluginName, csiplugins.CinderInTreePluginName,
		csiplugins.PortworxVolumePluginName:
		return true
	}
	return false
}

func admitsLabels(pv *v1.PersistentVolume, node *v1.Node) bool {
	return volume.CheckNodeAffinity(pv, node.Labels) == nil
}
