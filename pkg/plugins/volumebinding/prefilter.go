package volumebinding

import (
	"context"
	"errors"
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	fwk "k8s.io/kube-scheduler/framework"
)

// PreFilter gathers the pod's claims. A missing, Lost or terminating claim,
// or an unbound Immediate one, makes the pod UnschedulableAndUnresolvable
// with a reason naming it. Bound volumes, pre-bound volumes and claims whose
// provisioning already started pin the pod to the nodes they allow; those
// nodes are returned so the framework filters no others.
func (pl *LocalVolumeBinding) PreFilter(ctx context.Context, cs fwk.CycleState, pod *v1.Pod, _ []fwk.NodeInfo) (*fwk.PreFilterResult, *fwk.Status) {
	if !hasClaims(pod) {
		cs.Write(stateKey, &stateData{claims: &podClaims{}, plans: map[string]*NodePlan{}})
		return nil, fwk.NewStatus(fwk.Skip)
	}
	if !pl.hasSynced() {
		return nil, fwk.AsStatus(errors.New("PersistentVolume index is not synced yet"))
	}
	claims, err := pl.gatherClaims(pod)
	if err != nil {
		var ce *claimError
		if errors.As(err, &ce) {
			countUnschedulable("prefilter_claim")
			return nil, fwk.NewStatus(fwk.UnschedulableAndUnresolvable, ce.msg)
		}
		return nil, fwk.AsStatus(err)
	}
	cs.Write(stateKey, &stateData{claims: claims, plans: map[string]*NodePlan{}})

	nodes, why := pl.pinnedNodes(claims)
	if nodes == nil {
		return nil, nil
	}
	if nodes.Len() == 0 {
		countUnschedulable("prefilter_pinned")
		return nil, fwk.NewStatus(fwk.UnschedulableAndUnresolvable, why)
	}
	return &fwk.PreFilterResult{NodeNames: nodes}, nil
}

// pinnedNodes intersects the node sets that the pod's volumes pin it to, or
// returns nil when nothing pins it. Hostname labels are resolved to node
// names through Node objects; they need not be equal (kubernetes#125336).
func (pl *LocalVolumeBinding) pinnedNodes(claims *podClaims) (sets.Set[string], string) {
	var result sets.Set[string]
	var why string
	narrow := func(s sets.Set[string], reason string) {
		if result == nil {
			result = s
		} else {
			result = result.Intersection(s)
		}
		if result.Len() == 0 && why == "" {
			why = reason
		}
	}
	for _, b := range claims.bound {
		v, ok := pl.index.Get(b.pvName)
		if !ok || v.Hosts == nil {
			continue // missing PVs are reported per node by Filter
		}
		narrow(pl.index.NodesWithHostnames(v.Hosts), fmt.Sprintf("no node has the hostname PersistentVolume %s (bound to %s/%s) is pinned to %v", v.PV.Name, b.pvc.Namespace, b.pvc.Name, v.Hosts))
	}
	for _, c := range claims.delayed {
		switch {
		case c.selectedNode != "":
			narrow(sets.New(c.selectedNode), fmt.Sprintf("PersistentVolumeClaim %s is being provisioned for node %s, which conflicts with the pod's other volumes", c.key, c.selectedNode))
		case c.prebound != nil && c.prebound.Hosts != nil:
			narrow(pl.index.NodesWithHostnames(c.prebound.Hosts), fmt.Sprintf("no node has the hostname PersistentVolume %s (pre-bound to %s) is pinned to %v", c.prebound.PV.Name, c.key, c.prebound.Hosts))
		}
	}
	return result, why
}

// PreFilterExtensions is not needed: other pods do not change volume fit.
func (pl *LocalVolumeBinding) PreFilterExtensions() fwk.PreFilterExtensions { return nil }

func hasClaims(pod *v1.Pod) bool {
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].PersistentVolumeClaim != nil || pod.Spec.Volumes[i].Ephemeral != nil {
			return true
		}
	}
	return false
}
