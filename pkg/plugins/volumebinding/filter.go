package volumebinding

import (
	"context"
	"fmt"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/berth-dev/berth/pkg/plugins/volumebinding/matching"
	"github.com/berth-dev/berth/pkg/plugins/volumebinding/pvindex"
)

// Filter checks that the node admits the pod's bound volumes and that its
// unbound claims can all be satisfied there, by the node's volumes or by
// dynamic provisioning. The plan is kept for Score, Reserve and PreBind.
// Rejections are UnschedulableAndUnresolvable (preempting pods frees no
// volume) and say per node and claim why, for `kubectl describe pod`.
func (pl *LocalVolumeBinding) Filter(ctx context.Context, cs fwk.CycleState, pod *v1.Pod, nodeInfo fwk.NodeInfo) *fwk.Status {
	node := nodeInfo.Node()
	s, err := readState(cs)
	if err != nil {
		return fwk.AsStatus(err)
	}
	if msg := pl.checkBound(s.claims.bound, node); msg != "" {
		countUnschedulable("node_affinity")
		return unschedulable(node, msg)
	}
	if len(s.claims.delayed) == 0 {
		return nil
	}
	start := time.Now()
	plan, msg, reason, err := pl.planNode(s.claims.delayed, node)
	observeMatching(start, plan != nil)
	if err != nil {
		return fwk.AsStatus(err)
	}
	if plan == nil {
		countUnschedulable(reason)
		return unschedulable(node, msg)
	}
	s.setPlan(node.Name, plan)
	return nil
}

func unschedulable(node *v1.Node, msg string) *fwk.Status {
	return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, "node "+node.Name+": "+msg)
}

// checkBound verifies bound claims' volumes against the node.
func (pl *LocalVolumeBinding) checkBound(bound []boundClaim, node *v1.Node) string {
	for _, b := range bound {
		v, ok := pl.index.Get(b.pvName)
		if !ok {
			return fmt.Sprintf("PersistentVolumeClaim %s/%s is bound to PersistentVolume %q, which does not exist", b.pvc.Namespace, b.pvc.Name, b.pvName)
		}
		pv := pl.translateForNode(v.PV, node)
		if pv != v.PV {
			if !admitsLabels(pv, node) {
				return fmt.Sprintf("PersistentVolume %s (bound to %s/%s) does not admit the node: node affinity mismatch", pv.Name, b.pvc.Namespace, b.pvc.Name)
			}
			continue
		}
		if !v.AdmitsNode(node) {
			return fmt.Sprintf("PersistentVolume %s (bound to %s/%s) does not admit the node: node affinity mismatch", v.PV.Name, b.pvc.Namespace, b.pvc.Name)
		}
	}
	return ""
}

// planNode decides how the pod's unbound claims would be satisfied on node,
// or says why they cannot be. reason is a short metric label.
func (pl *LocalVolumeBinding) planNode(delayed []*claimInfo, node *v1.Node) (plan *NodePlan, msg, reason string, err error) {
	plan = &NodePlan{}
	var toMatch []*claimInfo
	var toProvision []*claimInfo
	for _, c := range delayed {
		switch {
		case c.selectedNode != "":
			if c.selectedNode != node.Name {
				return nil, fmt.Sprintf("claim %s is being provisioned for node %s", c.key, c.selectedNode), "selected_node", nil
			}
			toProvision = append(toProvision, c)
		case c.prebound != nil:
			if m := checkPrebound(c, c.prebound); m != fits {
				return nil, fmt.Sprintf("claim %s (%s): pre-bound PersistentVolume %s is %s", c.key, requestString(c.pvc), c.prebound.PV.Name, misfitText[m]), "prebound", nil
			}
			if !c.prebound.AdmitsNode(node) {
				return nil, fmt.Sprintf("claim %s (%s): pre-bound PersistentVolume %s is not on this node", c.key, requestString(c.pvc), c.prebound.PV.Name), "prebound", nil
			}
			plan.Static = append(plan.Static, StaticBinding{PVC: c.pvc, PV: c.prebound.PV, Request: c.request, Capacity: c.prebound.Capacity})
		default:
			toMatch = append(toMatch, c)
		}
	}

	if len(toMatch) > 0 {
		if msg, reason, err := pl.matchClaims(toMatch, node, plan); err != nil || msg != "" {
			return nil, msg, reason, err
		}
	}
	for _, c := range toProvision {
		capObj, why, err := pl.provisionCheck(c, node)
		if err != nil {
			return nil, "", "", err
		}
		if why != "" {
			return nil, fmt.Sprintf("claim %s (%s): %s", c.key, requestString(c.pvc), why), "provisioning", nil
		}
		plan.Provisions = append(plan.Provisions, Provision{PVC: c.pvc, Class: c.class.Name, Request: c.request, NodeCapacity: capObj})
	}
	return plan, "", "", nil
}

// matchClaims assigns claims to the node's volumes, adding to plan the static
// bindings and the claims left to dynamic provisioning.
func (pl *LocalVolumeBinding) matchClaims(claims []*claimInfo, node *v1.Node, plan *NodePlan) (string, string, error) {
	// Candidate volumes: every volume of the claims' classes on this node.
	var vols []*pvindex.Volume
	seenClass := map[string]bool{}
	for _, c := range claims {
		if !seenClass[c.class.Name] {
			seenClass[c.class.Name] = true
			vols = pl.index.ForNode(node, c.class.Name, vols)
		}
	}
	// Per-claim fit, with reasons kept for the message.
	fit := make([][]bool, len(claims))
	tallies := make([]tally, len(claims))
	mclaims := make([]matching.Claim, len(claims))
	provisionErr := make([]string, len(claims))
	capObjs := make([]*storagev1.CSIStorageCapacity, len(claims))
	for i, c := range claims {
		fit[i] = make([]bool, len(vols))
		for j, v := range vols {
			if v.Class != c.class.Name {
				continue
			}
			m := checkFit(c, v)
			tallies[i][m]++
			fit[i][j] = m == fits
		}
		mclaims[i] = matching.Claim{Request: c.request}
		if c.provisionable {
			capObj, why, err := pl.provisionCheck(c, node)
			if err != nil {
				return "", "", err
			}
			provisionErr[i] = why
			capObjs[i] = capObj
			mclaims[i].Provisionable = why == ""
		}
	}
	mvols := make([]matching.Volume, len(vols))
	for j, v := range vols {
		mvols[j] = matching.Volume{Capacity: v.Capacity}
	}
	res, inf := matching.Assign(mclaims, mvols, func(i, j int) bool { return fit[i][j] })
	if res == nil {
		return explain(claims, vols, tallies, provisionErr, inf), "no_fit", nil
	}
	for i, j := range res.VolumeOf {
		c := claims[i]
		if j == matching.Unassigned {
			plan.Provisions = append(plan.Provisions, Provision{PVC: c.pvc, Class: c.class.Name, Request: c.request, NodeCapacity: capObjs[i]})
			continue
		}
		plan.Static = append(plan.Static, StaticBinding{PVC: c.pvc, PV: vols[j].PV, Request: c.request, Capacity: vols[j].Capacity})
	}
	return "", "", nil
}

// explain renders why claims cannot be satisfied on a node, e.g.
// "claim db/data-0 (10Gi): no local PV fits: 2 too small, 1 access mode mismatch".
func explain(claims []*claimInfo, vols []*pvindex.Volume, tallies []tally, provisionErr []string, inf *matching.Infeasible) string {
	if len(inf.Claims) == 1 {
		i := inf.Claims[0]
		c := claims[i]
		msg := fmt.Sprintf("claim %s (%s): no local PV fits", c.key, requestString(c.pvc))
		if t := tallies[i].String(); t != "" {
			msg += ": " + t
		} else {
			msg += fmt.Sprintf(": no PersistentVolume of StorageClass %q on the node", c.class.Name)
		}
		if provisionErr[i] != "" && c.provisionable {
			msg += "; cannot provision: " + provisionErr[i]
		}
		return msg
	}
	var names, pvs []string
	for _, i := range inf.Claims {
		names = append(names, fmt.Sprintf("%s (%s)", claims[i].key, requestString(claims[i].pvc)))
	}
	for _, j := range inf.Volumes {
		pvs = append(pvs, vols[j].PV.Name)
	}
	return fmt.Sprintf("claims %s need %d local PVs but together fit only %d (%s)",
		strings.Join(names, ", "), len(inf.Claims), len(inf.Volumes), strings.Join(pvs, ", "))
}
