package pvindex

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/component-helpers/storage/volume"
)

// Volume is an indexed PersistentVolume with the facts Filter needs
// precomputed.
type Volume struct {
	// PV is the effective object: the assumed copy if one is recorded,
	// otherwise the informer's. Never modify it.
	PV *v1.PersistentVolume
	// Capacity is spec.capacity[storage] in bytes.
	Capacity int64
	// Class is the PV's StorageClass name ("" for none).
	Class string
	// Hosts are the kubernetes.io/hostname values the PV is pinned to, nil
	// when it is not pinned by hostname.
	Hosts []string
	// HostOnly is true when the NodeAffinity says nothing but "hostname in
	// Hosts", so membership of the node's hostname is the whole check.
	HostOnly bool
	// selector is the parsed NodeAffinity (nil when there is none).
	selector *nodeaffinity.NodeSelector
	// Invalid is set when the PV cannot be used for scheduling (for example
	// its NodeAffinity does not parse); such volumes are never candidates.
	Invalid error
}

// Name returns the PV's name.
func (v *Volume) Name() string { return v.PV.Name }

// AdmitsNode reports whether the volume's NodeAffinity admits the node.
func (v *Volume) AdmitsNode(node *v1.Node) bool {
	if v.Invalid != nil {
		return false
	}
	if v.HostOnly {
		host, ok := node.Labels[v1.LabelHostname]
		if !ok {
			return false
		}
		for _, h := range v.Hosts {
			if h == host {
				return true
			}
		}
		return false
	}
	if v.selector == nil {
		return true
	}
	return v.selector.Match(node)
}

// newVolume computes the index facts for a PV.
func newVolume(pv *v1.PersistentVolume) *Volume {
	v := &Volume{PV: pv, Class: volume.GetPersistentVolumeClass(pv)}
	q, ok := pv.Spec.Capacity[v1.ResourceStorage]
	if !ok {
		v.Invalid = fmt.Errorf("spec.capacity.storage is not set")
		return v
	}
	v.Capacity = q.Value()
	v.Hosts, v.HostOnly, v.Invalid = pinnedHosts(pv)
	if v.Invalid == nil && pv.Spec.NodeAffinity != nil && pv.Spec.NodeAffinity.Required != nil {
		sel, err := nodeaffinity.NewNodeSelector(pv.Spec.NodeAffinity.Required)
		if err != nil {
			v.Invalid = fmt.Errorf("spec.nodeAffinity.required: %w", err)
		}
		v.selector = sel
	}
	return v
}

// pinnedHosts extracts the hostname values a PV's required NodeAffinity pins
// it to. It also validates every term, so a malformed selector is reported
// once here instead of failing silently on every node.
func pinnedHosts(pv *v1.PersistentVolume) (hosts []string, hostOnly bool, err error) {
	na := pv.Spec.NodeAffinity
	if na == nil || na.Required == nil {
		return nil, false, nil
	}
	terms := na.Required.NodeSelectorTerms
	if len(terms) == 0 {
		// An empty term list matches no node.
		return nil, false, fmt.Errorf("spec.nodeAffinity.required.nodeSelectorTerms is empty")
	}
	pinned, only := true, true
	seen := map[string]bool{}
	for _, term := range terms {
		if len(term.MatchFields) > 0 {
			only = false
		}
		found := false
		for _, req := range term.MatchExpressions {
			if req.Key == v1.LabelHostname && req.Operator == v1.NodeSelectorOpIn {
				if found {
					// Two hostname requirements in one term intersect; keep
					// it correct by checking the full affinity.
					only = false
				}
				found = true
				for _, h := range req.Values {
					if !seen[h] {
						seen[h] = true
						hosts = append(hosts, h)
					}
				}
			} else {
				only = false
			}
		}
		if !found {
			pinned = false
		}
	}
	if !pinned {
		return nil, false, nil
	}
	return hosts, only, nil
}
