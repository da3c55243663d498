package volumebinding

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	v1helper "k8s.io/kubernetes/pkg/apis/core/v1/helper"
)

// provisionCheck decides whether a claim can be provisioned dynamically for
// the node: the class has a provisioner, the node is in the class's
// AllowedTopologies, and, when the CSI driver tracks capacity, some
// CSIStorageCapacity reachable from the node is large enough. It returns the
// capacity object used (the tightest that fits) or a reason.
func (pl *LocalVolumeBinding) provisionCheck(c *claimInfo, node *v1.Node) (*storagev1.CSIStorageCapacity, string, error) {
	if !c.provisionable {
		return nil, fmt.Sprintf("StorageClass %q does not provision volumes", c.class.Name), nil
	}
	if !v1helper.MatchTopologySelectorTerms(c.class.AllowedTopologies, labels.Set(node.Labels)) {
		return nil, fmt.Sprintf("node is outside StorageClass %q allowedTopologies", c.class.Name), nil
	}
	if c.request == 0 {
		return nil, "", nil
	}
	driver, err := pl.csiDrivers.Get(c.class.Provisioner)
	if apierrors.IsNotFound(err) {
		return nil, "", nil // not a CSI driver, or no capacity tracking
	} else if err != nil {
		return nil, "", err
	}
	if driver.Spec.StorageCapacity == nil || !*driver.Spec.StorageCapacity {
		return nil, "", nil
	}
	caps, err := pl.capacities.List(labels.Everything())
	if err != nil {
		return nil, "", err
	}
	var best *storagev1.CSIStorageCapacity
	for _, cp := range caps {
		if cp.StorageClassName != c.class.Name {
			continue
		}
		limit := VolumeLimit(cp)
		if limit == nil || limit.Value() < c.request || !capacityReaches(cp, node) {
			continue
		}
		if best == nil || limit.Cmp(*VolumeLimit(best)) < 0 {
			best = cp
		}
	}
	if best == nil {
		return nil, fmt.Sprintf("not enough capacity: no CSIStorageCapacity of StorageClass %q reachable from the node has %s", c.class.Name, requestString(c.pvc)), nil
	}
	return best, "", nil
}

// VolumeLimit is the largest volume a CSIStorageCapacity admits: its
// maximumVolumeSize when set, else its capacity (nil when unknown).
func VolumeLimit(c *storagev1.CSIStorageCapacity) *resource.Quantity {
	if c.MaximumVolumeSize != nil {
		return c.MaximumVolumeSize
	}
	return c.Capacity
}

func capacityReaches(c *storagev1.CSIStorageCapacity, node *v1.Node) bool {
	if c.NodeTopology == nil {
		return false
	}
	sel, err := metav1.LabelSelectorAsSelector(c.NodeTopology)
	if err != nil {
		return false
	}
	return sel.Matches(labels.Set(node.Labels))
}
