package policy

import (
	"fmt"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// fieldNodeName is the field key a NodeSelectorTerm's MatchFields may use.
const fieldNodeName = "metadata.name"

// PinnedHost returns the single host a PV's NodeAffinity pins it to: every
// required term must restrict kubernetes.io/hostname (label) or
// metadata.name (field) with the In operator, and all those terms together
// must name exactly one hostname and/or exactly one node name. A volume
// reachable from two hosts, from a zone, or from anywhere is not pinned: it
// does not die with one node. The source type is not checked (spec.local,
// hostPath as local-path-provisioner writes, or a node-local CSI driver
// using kubernetes.io/hostname topology all qualify): opting a class in is
// the statement that its volumes live on one node.
func PinnedHost(pv *v1.PersistentVolume) (hostname, nodeName string, pinned bool) {
	if pv == nil || pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return "", "", false
	}
	terms := pv.Spec.NodeAffinity.Required.NodeSelectorTerms
	if len(terms) == 0 {
		return "", "", false
	}
	var hosts, names []string
	for _, term := range terms {
		termPinned := false
		for _, req := range term.MatchExpressions {
			if req.Key == v1.LabelHostname && req.Operator == v1.NodeSelectorOpIn && len(req.Values) > 0 {
				hosts = append(hosts, req.Values...)
				termPinned = true
			}
		}
		for _, req := range term.MatchFields {
			if req.Key == fieldNodeName && req.Operator == v1.NodeSelectorOpIn && len(req.Values) > 0 {
				names = append(names, req.Values...)
				termPinned = true
			}
		}
		if !termPinned {
			return "", "", false
		}
	}
	slices.Sort(hosts)
	hosts = slices.Compact(hosts)
	slices.Sort(names)
	names = slices.Compact(names)
	if len(hosts) > 1 || len(names) > 1 {
		return "", "", false
	}
	if len(hosts) == 1 {
		hostname = hosts[0]
	}
	if len(names) == 1 {
		nodeName = names[0]
	}
	return hostname, nodeName, true
}

// VolumePinnedToNode reports whether pv is pinned (see PinnedHost) to the
// node with this name and kubernetes.io/hostname label. The hostname label
// may differ from the node name (kubernetes#125336): the hostname is what
// local PVs name; a metadata.name field selector names the node.
func VolumePinnedToNode(pv *v1.PersistentVolume, nodeName, hostname string) bool {
	h, n, pinned := PinnedHost(pv)
	if !pinned {
		return false
	}
	if h != "" && h != hostname {
		return false
	}
	if n != "" && n != nodeName {
		return false
	}
	return true
}

// ClaimRef is a claim (or pod) identity written into annotations as
// "<namespace>/<name>/<uid>".
type ClaimRef struct {
	Namespace, Name string
	UID             types.UID
}

// String formats the reference as "<namespace>/<name>/<uid>".
func (r ClaimRef) String() string { return r.Namespace + "/" + r.Name + "/" + string(r.UID) }

// Key is "<namespace>/<name>", the cache key of the object.
func (r ClaimRef) Key() string { return r.Namespace + "/" + r.Name }

// ParseRef parses "<namespace>/<name>/<uid>".
func ParseRef(s string) (ClaimRef, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return ClaimRef{}, fmt.Errorf("%q is not <namespace>/<name>/<uid>", s)
	}
	return ClaimRef{Namespace: parts[0], Name: parts[1], UID: types.UID(parts[2])}, nil
}
