package volumebinding

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-helpers/storage/volume"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
)

// reservation is what Reserve promised on the chosen node and PreBind must
// write.
type reservation struct {
	node string
	// static: PVs with claimRef set to their claim (the assumed copies).
	static []StaticBinding
	// assumed lists the PV copies Reserve overlaid in the index.
	assumed []*v1.PersistentVolume
	// provisions: claim copies with the selected-node annotation set.
	provisions []*v1.PersistentVolumeClaim
}

func (r *reservation) empty() bool {
	return r == nil || (len(r.static) == 0 && len(r.provisions) == 0)
}

// Reserve records the chosen volumes in the index as promised to their
// claims, so the next scheduling cycle cannot choose them, even before the
// API writes in PreBind land.
func (pl *LocalVolumeBinding) Reserve(ctx context.Context, cs fwk.CycleState, pod *v1.Pod, nodeName string) *fwk.Status {
	s, err := readState(cs)
	if err != nil {
		return fwk.AsStatus(err)
	}
	plan, ok := s.plan(nodeName)
	if !ok {
		s.reserved = nil
		return nil // no unbound claims
	}
	r := &reservation{node: nodeName}
	for _, b := range plan.Static {
		newPV, dirty, err := volume.GetBindVolumeToClaim(b.PV, b.PVC)
		if err != nil {
			pl.restore(r)
			return fwk.AsStatus(fmt.Errorf("reserving PersistentVolume %s for %s/%s: %w", b.PV.Name, b.PVC.Namespace, b.PVC.Name, err))
		}
		if dirty {
			if err := pl.index.Assume(newPV); err != nil {
				pl.restore(r)
				return fwk.AsStatus(fmt.Errorf("reserving for %s/%s: %w", b.PVC.Namespace, b.PVC.Name, err))
			}
			r.assumed = append(r.assumed, newPV)
		}
		nb := b
		nb.PV = newPV
		r.static = append(r.static, nb)
	}
	for _, p := range plan.Provisions {
		c := p.PVC.DeepCopy()
		metav1.SetMetaDataAnnotation(&c.ObjectMeta, volume.AnnSelectedNode, nodeName)
		r.provisions = append(r.provisions, c)
	}
	s.reserved = r
	klog.FromContext(ctx).V(4).Info("Reserved volumes", "pod", klog.KObj(pod), "node", nodeName, "static", len(r.static), "provision", len(r.provisions))
	return nil
}

// Unreserve drops Reserve's promises. It is idempotent.
func (pl *LocalVolumeBinding) Unreserve(ctx context.Context, cs fwk.CycleState, pod *v1.Pod, nodeName string) {
	s, err := readState(cs)
	if err != nil {
		return
	}
	pl.restore(s.reserved)
}

func (pl *LocalVolumeBinding) restore(r *reservation) {
	if r == nil {
		return
	}
	for _, pv := range r.assumed {
		pl.index.Restore(pv)
	}
}
