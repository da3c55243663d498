package volumebinding

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/component-helpers/storage/volume"
	"k8s.io/utils/ptr"

	"github.com/berth-dev/berth/pkg/plugins/volumebinding/pvindex"
)

// misfit says why a volume cannot take a claim. The zero value means it can.
type misfit int

const (
	fits misfit = iota
	misfitInvalid
	misfitClaimedElsewhere
	misfitDeleting
	misfitNotAvailable
	misfitTooSmall
	misfitVolumeMode
	misfitAttributesClass
	misfitSelector
	misfitAccessMode
	numMisfits
)

var misfitText = [numMisfits]string{
	fits:                   "fits",
	misfitInvalid:          "invalid",
	misfitClaimedElsewhere: "claimed by another claim",
	misfitDeleting:         "being deleted",
	misfitNotAvailable:     "not Available",
	misfitTooSmall:         "too small",
	misfitVolumeMode:       "volume mode mismatch",
	misfitAttributesClass:  "VolumeAttributesClass mismatch",
	misfitSelector:         "selector mismatch",
	misfitAccessMode:       "access mode mismatch",
}

// checkFit decides whether an unbound volume of the claim's class (on the
// node being evaluated) can take the claim. It follows the rules of
// component-helpers' FindMatchingVolume, which the PV controller also uses,
// so the scheduler never picks a volume the PV controller would refuse.
func checkFit(c *claimInfo, v *pvindex.Volume) misfit {
	pv := v.PV
	switch {
	case v.Invalid != nil:
		return misfitInvalid
	case pv.Spec.ClaimRef != nil && !volume.IsVolumeBoundToClaim(pv, c.pvc):
		return misfitClaimedElsewhere
	case pv.DeletionTimestamp != nil:
		return misfitDeleting
	case pv.Status.Phase != v1.VolumeAvailable && pv.Spec.ClaimRef == nil:
		return misfitNotAvailable
	case v.Capacity < c.request:
		return misfitTooSmall
	case volume.CheckVolumeModeMismatches(&c.pvc.Spec, &pv.Spec):
		return misfitVolumeMode
	case ptr.Deref(c.pvc.Spec.VolumeAttributesClassName, "") != ptr.Deref(pv.Spec.VolumeAttributesClassName, ""):
		return misfitAttributesClass
	case c.selector != nil && !c.selector.Matches(labels.Set(pv.Labels)):
		return misfitSelector
	case !volume.CheckAccessModes(c.pvc, pv):
		return misfitAccessMode
	}
	return fits
}

// checkPrebound applies the subset of checks FindMatchingVolume applies to a
// volume whose claimRef already names the claim.
func checkPrebound(c *claimInfo, v *pvindex.Volume) misfit {
	pv := v.PV
	switch {
	case v.Invalid != nil:
		return misfitInvalid
	case pv.DeletionTimestamp != nil:
		return misfitDeleting
	case v.Capacity < c.request:
		return misfitTooSmall
	case volume.CheckVolumeModeMismatches(&c.pvc.Spec, &pv.Spec):
		return misfitVolumeMode
	case ptr.Deref(c.pvc.Spec.VolumeAttributesClassName, "") != ptr.Deref(pv.Spec.VolumeAttributesClassName, ""):
		return misfitAttributesClass
	}
	return fits
}

// tally counts why volumes were rejected for one claim.
type tally [numMisfits]int

// String renders e.g. "2 too small, 1 access mode mismatch".
func (t *tally) String() string {
	var parts []string
	for m := misfit(1); m < numMisfits; m++ {
		if t[m] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", t[m], misfitText[m]))
		}
	}
	return strings.Join(parts, ", ")
}
