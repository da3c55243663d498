package pvindex

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/storage"
)

// versioner compares resourceVersions as the API server's storage does.
var versioner = storage.APIObjectVersioner{}

// Index is safe for concurrent use: Filter reads it from many goroutines
// while informer handlers and Reserve write it.
type Index struct {
	mu sync.RWMutex

	// informer holds the API server's version of each PV.
	informer map[string]*v1.PersistentVolume
	// assumed holds Reserve's promises, overlaying informer.
	assumed map[string]*v1.PersistentVolume
	// volumes holds the effective (overlaid) entry of each PV.
	volumes map[string]*Volume

	// The lists below are kept sorted by PV name (see addTo), so ForNode
	// returns volumes in name order without sorting on every call.

	// byHost lists pinned volumes under each hostname label value.
	byHost map[string][]*Volume
	// unpinned lists volumes not pinned by hostname, per StorageClass.
	unpinned map[string][]*Volume
	// byClaim lists volumes whose claimRef names a claim ("ns/name"), so a
	// claim pre-bound by an admin (or by Reserve) is found at once.
	byClaim map[string][]*Volume

	// nodesByHost maps hostname label values to node names, and hostOfNode
	// the other way, from Node objects.
	nodesByHost map[string]sets.Set[string]
	hostOfNode  map[string]string
}

// New returns an empty index.
func New() *Index {
	return &Index{
		informer:    map[string]*v1.PersistentVolume{},
		assumed:     map[string]*v1.PersistentVolume{},
		volumes:     map[string]*Volume{},
		byHost:      map[string][]*Volume{},
		unpinned:    map[string][]*Volume{},
		byClaim:     map[string][]*Volume{},
		nodesByHost: map[string]sets.Set[string]{},
		hostOfNode:  map[string]string{},
	}
}

// ClaimKey is the byClaim key of a claim.
func ClaimKey(namespace, name string) string { return namespace + "/" + name }

// SetPV records the API server's version of a PV (informer add or update).
// An assumed copy is dropped when the informer's version differs from the
// one it was assumed on: the API server's word is newer.
// It returns the effective volume.
//
// An object older than the one held is ignored: the index is also refreshed
// from the informer's store ahead of its own event handler (see the
// plugin's queueing hints), so events may arrive after a newer state.
func (x *Index) SetPV(pv *v1.PersistentVolume) *Volume {
	x.mu.Lock()
	defer x.mu.Unlock()
	if cur, ok := x.informer[pv.Name]; ok && cur.UID == pv.UID && versioner.CompareResourceVersion(cur, pv) > 0 {
		return x.volumes[pv.Name]
	}
	x.informer[pv.Name] = pv
	if a, ok := x.assumed[pv.Name]; ok && a.ResourceVersion != pv.ResourceVersion {
		delete(x.assumed, pv.Name)
	}
	return x.reindexLocked(pv.Name)
}

// DeletePV forgets a PV (informer delete).
func (x *Index) DeletePV(name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.informer, name)
	delete(x.assumed, name)
	x.reindexLocked(name)
}

// Assume overlays a modified copy of a PV, typically with claimRef set to
// the claim Reserve chose. It fails if the copy is not based on the version
// the index holds, since the promise would rest on stale data.
func (x *Index) Assume(pv *v1.PersistentVolume) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	cur, ok := x.informer[pv.Name]
	if !ok {
		return fmt.Errorf("PersistentVolume %q is not in the index", pv.Name)
	}
	if cur.ResourceVersion != pv.ResourceVersion {
		return fmt.Errorf("PersistentVolume %q changed (resourceVersion %s, assumed on %s)", pv.Name, cur.ResourceVersion, pv.ResourceVersion)
	}
	// An assumed copy carries the informer's resourceVersion, so the check
	// above cannot tell that the volume was already promised to another
	// claim (two pods filtered before either reserved). Refuse, or both
	// pods would be given the same volume.
	if a, ok := x.assumed[pv.Name]; ok && !sameClaim(a.Spec.ClaimRef, pv.Spec.ClaimRef) {
		return fmt.Errorf("PersistentVolume %q is already reserved (claimRef %v)", pv.Name, a.Spec.ClaimRef)
	}
	x.assumed[pv.Name] = pv
	x.reindexLocked(pv.Name)
	return nil
}

// sameClaim reports whether two claimRefs name the same claim (both nil
// counts as the same).
func sameClaim(a, b *v1.ObjectReference) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Namespace == b.Namespace && a.Name == b.Name && a.UID == b.UID
}

// Restore drops an assumed copy so the informer's version is effective
// again. Only the very copy passed to Assume is dropped: if it was already
// replaced (by the informer, or by a later Assume of another pod), the newer
// state stays.
func (x *Index) Restore(assumed *v1.PersistentVolume) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if cur, ok := x.assumed[assumed.Name]; !ok || cur != assumed {
		return
	}
	delete(x.assumed, assumed.Name)
	x.reindexLocked(assumed.Name)
}

// IsAssumed reports whether an assumed copy of the PV is in effect.
func (x *Index) IsAssumed(name string) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	_, ok := x.assumed[name]
	return ok
}

// Get returns the effective volume.
func (x *Index) Get(name string) (*Volume, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	v, ok := x.volumes[name]
	return v, ok
}

// APIObject returns the informer's version of a PV, ignoring assumptions.
func (x *Index) APIObject(name string) (*v1.PersistentVolume, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	pv, ok := x.informer[name]
	return pv, ok
}

// reindexLocked recomputes the effective entry of one PV and its places in
// the derived maps.
func (x *Index) reindexLocked(name string) *Volume {
	if old, ok := x.volumes[name]; ok {
		x.unlinkLocked(old)
		delete(x.volumes, name)
	}
	pv, ok := x.assumed[name]
	if !ok {
		pv, ok = x.informer[name]
	}
	if !ok {
		return nil
	}
	v := newVolume(pv)
	x.volumes[name] = v
	if v.Hosts != nil {
		for _, h := range v.Hosts {
			addTo(x.byHost, h, v)
		}
	} else {
		addTo(x.unpinned, v.Class, v)
	}
	if ref := pv.Spec.ClaimRef; ref != nil {
		addTo(x.byClaim, ClaimKey(ref.Namespace, ref.Name), v)
	}
	return v
}

func (x *Index) unlinkLocked(v *Volume) {
	if v.Hosts != nil {
		for _, h := range v.Hosts {
			removeFrom(x.byHost, h, v.PV.Name)
		}
	} else {
		removeFrom(x.unpinned, v.Class, v.PV.Name)
	}
	if ref := v.PV.Spec.ClaimRef; ref != nil {
		removeFrom(x.byClaim, ClaimKey(ref.Namespace, ref.Name), v.PV.Name)
	}
}

// addTo inserts v into m[key], keeping the list sorted by PV name (and
// replacing an entry of the same name). Lists are short (about ten volumes
// per host), so a binary-search insert is cheap, and it spares readers a
// sort per call: ForNode runs for every node of every scheduling cycle,
// while volumes change rarely.
func addTo(m map[string][]*Volume, key string, v *Volume) {
	list := m[key]
	i, found := slices.BinarySearchFunc(list, v.PV.Name, byName)
	if found {
		list[i] = v
		return
	}
	m[key] = slices.Insert(list, i, v)
}

// removeFrom deletes the volume named name from m[key], keeping the list
// sorted, and drops the key when its list becomes empty.
func removeFrom(m map[string][]*Volume, key, name string) {
	list := m[key]
	i, found := slices.BinarySearchFunc(list, name, byName)
	if !found {
		return
	}
	if len(list) == 1 {
		delete(m, key)
		return
	}
	m[key] = slices.Delete(list, i, i+1)
}

// byName compares a volume's PV name with name, for binary search.
func byName(v *Volume, name string) int { return strings.Compare(v.PV.Name, name) }

// ForNode appends to buf the volumes of a StorageClass whose NodeAffinity
// admits the node, sorted by name, and returns it. Cost is proportional to
// the volumes pinned to the node's hostname plus the class's unpinned
// volumes, independent of the total number of PVs.
func (x *Index) ForNode(node *v1.Node, class string, buf []*Volume) []*Volume {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var pinned []*Volume
	if host, ok := node.Labels[v1.LabelHostname]; ok {
		pinned = x.byHost[host]
	}
	unpinned := x.unpinned[class]
	// Sorted by name so ties in capacity break the same way on every node.
	// Both lists are sorted by name, and disjoint (a volume is pinned or
	// not), so merging them gives that order without sorting.
	for len(pinned) > 0 || len(unpinned) > 0 {
		var v *Volume
		if len(unpinned) == 0 || len(pinned) > 0 && pinned[0].PV.Name < unpinned[0].PV.Name {
			v, pinned = pinned[0], pinned[1:]
			if v.Class != class {
				continue
			}
		} else {
			v, unpinned = unpinned[0], unpinned[1:]
		}
		if v.AdmitsNode(node) {
			buf = append(buf, v)
		}
	}
	return buf
}

// ReferencingClaim returns the volumes whose claimRef names the claim,
// sorted by name.
func (x *Index) ReferencingClaim(namespace, name string) []*Volume {
	x.mu.RLock()
	defer x.mu.RUnlock()
	// A copy: the index's list changes in place under the write lock.
	list := x.byClaim[ClaimKey(namespace, name)]
	return append(make([]*Volume, 0, len(list)), list...)
}

// SetNode records a node's hostname label (informer add or update).
func (x *Index) SetNode(node *v1.Node) {
	host, hasHost := node.Labels[v1.LabelHostname]
	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.hostOfNode[node.Name]; ok {
		if hasHost && old == host {
			return
		}
		x.unlinkNodeLocked(node.Name, old)
	}
	if hasHost {
		x.hostOfNode[node.Name] = host
		s, ok := x.nodesByHost[host]
		if !ok {
			s = sets.New[string]()
			x.nodesByHost[host] = s
		}
		s.Insert(node.Name)
	}
}

// DeleteNode forgets a node.
func (x *Index) DeleteNode(name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.hostOfNode[name]; ok {
		x.unlinkNodeLocked(name, old)
	}
}

func (x *Index) unlinkNodeLocked(name, host string) {
	delete(x.hostOfNode, name)
	if s, ok := x.nodesByHost[host]; ok {
		s.Delete(name)
		if s.Len() == 0 {
			delete(x.nodesByHost, host)
		}
	}
}

// NodesWithHostnames returns the names of the nodes whose hostname label is
// one of hosts. Node names and hostname labels are not assumed equal.
func (x *Index) NodesWithHostnames(hosts []string) sets.Set[string] {
	out := sets.New[string]()
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, h := range hosts {
		out = out.Union(x.nodesByHost[h])
	}
	return out
}

// Stats describes the index's size, for metrics and benchmarks.
type Stats struct {
	Volumes, Assumed, Hosts, Nodes int
}

// Stats returns the index's current size.
func (x *Index) Stats() Stats {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return Stats{Volumes: len(x.volumes), Assumed: len(x.assumed), Hosts: len(x.byHost), Nodes: len(x.hostOfNode)}
}
