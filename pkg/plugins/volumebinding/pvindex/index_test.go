package pvindex

import (
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
)

const zoneKey = "topology.kubernetes.io/zone"

// pvOpt modifies a test PV.
type pvOpt func(*v1.PersistentVolume)

func makePV(name, class string, opts ...pvOpt) *v1.PersistentVolume {
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: "1"},
		Spec: v1.PersistentVolumeSpec{
			Capacity:         v1.ResourceList{v1.ResourceStorage: resource.MustParse("10Gi")},
			StorageClassName: class,
			AccessModes:      []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
		},
		Status: v1.PersistentVolumeStatus{Phase: v1.VolumeAvailable},
	}
	for _, o := range opts {
		o(pv)
	}
	return pv
}

func withRV(rv string) pvOpt { return func(pv *v1.PersistentVolume) { pv.ResourceVersion = rv } }

func withCapacity(q string) pvOpt {
	return func(pv *v1.PersistentVolume) {
		pv.Spec.Capacity = v1.ResourceList{v1.ResourceStorage: resource.MustParse(q)}
	}
}

func withoutCapacity() pvOpt { return func(pv *v1.PersistentVolume) { pv.Spec.Capacity = nil } }

// withTerms sets the required NodeAffinity to the given terms.
func withTerms(terms ...v1.NodeSelectorTerm) pvOpt {
	return func(pv *v1.PersistentVolume) {
		pv.Spec.NodeAffinity = &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: terms}}
	}
}

// onHosts pins the PV to hostnames with one "hostname In" term.
func onHosts(hosts ...string) pvOpt {
	return withTerms(term(req(v1.LabelHostname, v1.NodeSelectorOpIn, hosts...)))
}

func withClaimRef(ns, name string, uid types.UID) pvOpt {
	return func(pv *v1.PersistentVolume) {
		pv.Spec.ClaimRef = &v1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: ns, Name: name, UID: uid}
	}
}

func term(reqs ...v1.NodeSelectorRequirement) v1.NodeSelectorTerm {
	return v1.NodeSelectorTerm{MatchExpressions: reqs}
}

func req(key string, op v1.NodeSelectorOperator, values ...string) v1.NodeSelectorRequirement {
	return v1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

func makeNode(name string, labels map[string]string) *v1.Node {
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

// hostNode is a node whose hostname label differs from its name.
func hostNode(name, host string, extra ...string) *v1.Node {
	l := map[string]string{v1.LabelHostname: host}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return makeNode(name, l)
}

// bound returns a copy of pv with claimRef set, as Reserve assumes it.
func bound(pv *v1.PersistentVolume, ns, name string, uid types.UID) *v1.PersistentVolume {
	c := pv.DeepCopy()
	withClaimRef(ns, name, uid)(c)
	return c
}

func names(vols []*Volume) []string {
	out := make([]string, 0, len(vols))
	for _, v := range vols {
		out = append(out, v.Name())
	}
	return out
}

func TestNewVolumePinning(t *testing.T) {
	tests := []struct {
		name         string
		pv           *v1.PersistentVolume
		wantHosts    []string
		wantHostOnly bool
		wantInvalid  bool
		admits       []*v1.Node
		rejects      []*v1.Node
	}{
		{
			name:         "hostname In one value",
			pv:           makePV("p", "local", onHosts("h1")),
			wantHosts:    []string{"h1"},
			wantHostOnly: true,
			admits:       []*v1.Node{hostNode("node-1", "h1")},
			rejects:      []*v1.Node{hostNode("h1", "h2"), makeNode("h1", nil)},
		},
		{
			name:         "hostname In several values",
			pv:           makePV("p", "local", onHosts("h1", "h2", "h1")),
			wantHosts:    []string{"h1", "h2"},
			wantHostOnly: true,
			admits:       []*v1.Node{hostNode("a", "h1"), hostNode("b", "h2")},
			rejects:      []*v1.Node{hostNode("c", "h3")},
		},
		{
			name: "multi-term, every term hostname In",
			pv: makePV("p", "local", withTerms(
				term(req(v1.LabelHostname, v1.NodeSelectorOpIn, "h1")),
				term(req(v1.LabelHostname, v1.NodeSelectorOpIn, "h2", "h3")),
			)),
			wantHosts:    []string{"h1", "h2", "h3"},
			wantHostOnly: true,
			admits:       []*v1.Node{hostNode("a", "h1"), hostNode("b", "h3")},
			rejects:      []*v1.Node{hostNode("c", "h4")},
		},
		{
			name: "hostname In plus a zone requirement: pinned, not host-only",
			pv: makePV("p", "local", withTerms(
				term(req(v1.LabelHostname, v1.NodeSelectorOpIn, "h1"), req(zoneKey, v1.NodeSelectorOpIn, "z1")),
			)),
			wantHosts:    []string{"h1"},
			wantHostOnly: false,
			admits:       []*v1.Node{hostNode("a", "h1", zoneKey, "z1")},
			rejects:      []*v1.Node{hostNode("a", "h1", zoneKey, "z2"), hostNode("a", "h1")},
		},
		{
			name: "two hostname requirements in one term intersect",
			pv: makePV("p", "local", withTerms(
				term(req(v1.LabelHostname, v1.NodeSelectorOpIn, "h1", "h2"), req(v1.LabelHostname, v1.NodeSelectorOpIn, "h2")),
			)),
			wantHosts:    []string{"h1", "h2"},
			wantHostOnly: false,
			admits:       []*v1.Node{hostNode("b", "h2")},
			rejects:      []*v1.Node{hostNode("a", "h1")},
		},
		{
			name: "matchFields make it not host-only",
			pv: makePV("p", "local", withTerms(v1.NodeSelectorTerm{
				MatchExpressions: []v1.NodeSelectorRequirement{req(v1.LabelHostname, v1.NodeSelectorOpIn, "h1")},
				MatchFields:      []v1.NodeSelectorRequirement{req("metadata.name", v1.NodeSelectorOpIn, "node-1")},
			})),
			wantHosts:    []string{"h1"},
			wantHostOnly: false,
			admits:       []*v1.Node{hostNode("node-1", "h1")},
			rejects:      []*v1.Node{hostNode("node-2", "h1")},
		},
		{
			name: "one term without hostname: not pinned",
			pv: makePV("p", "local", withTerms(
				term(req(v1.LabelHostname, v1.NodeSelectorOpIn, "h1")),
				term(req(zoneKey, v1.NodeSelectorOpIn, "z1")),
			)),
			admits:  []*v1.Node{hostNode("a", "h1"), hostNode("b", "h9", zoneKey, "z1")},
			rejects: []*v1.Node{hostNode("c", "h9", zoneKey, "z2")},
		},
		{
			name:    "hostname NotIn: not pinned",
			pv:      makePV("p", "local", withTerms(term(req(v1.LabelHostname, v1.NodeSelectorOpNotIn, "h1")))),
			admits:  []*v1.Node{hostNode("a", "h2")},
			rejects: []*v1.Node{hostNode("b", "h1")},
		},
		{
			name:   "no affinity: not pinned, admits every node",
			pv:     makePV("p", "nfs"),
			admits: []*v1.Node{hostNode("a", "h1"), makeNode("b", nil)},
		},
		{
			name:        "operator Gt with a non-integer value",
			pv:          makePV("p", "local", withTerms(term(req(v1.LabelHostname, v1.NodeSelectorOpIn, "h1"), req("disks", v1.NodeSelectorOpGt, "many")))),
			wantHosts:   []string{"h1"},
			wantInvalid: true,
			rejects:     []*v1.Node{hostNode("a", "h1", "disks", "5")},
		},
		{
			name:        "operator Gt with a non-integer value, unpinned",
			pv:          makePV("p", "local", withTerms(term(req("disks", v1.NodeSelectorOpGt, "many")))),
			wantInvalid: true,
			rejects:     []*v1.Node{hostNode("a", "h1", "disks", "5")},
		},
		{
			name:        "empty nodeSelectorTerms",
			pv:          makePV("p", "local", withTerms()),
			wantInvalid: true,
			rejects:     []*v1.Node{hostNode("a", "h1")},
		},
		{
			name:        "hostname In without values",
			pv:          makePV("p", "local", onHosts()),
			wantHosts:   nil,
			wantInvalid: true,
			rejects:     []*v1.Node{hostNode("a", "")},
		},
		{
			name:        "no capacity",
			pv:          makePV("p", "local", onHosts("h1"), withoutCapacity()),
			wantInvalid: true,
			rejects:     []*v1.Node{hostNode("a", "h1")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newVolume(tc.pv)
			assert.Equal(t, tc.wantHosts, v.Hosts, "Hosts")
			if !tc.wantInvalid {
				assert.Equal(t, tc.wantHostOnly, v.HostOnly, "HostOnly")
				assert.NoError(t, v.Invalid)
			} else {
				assert.Error(t, v.Invalid)
			}
			for _, n := range tc.admits {
				assert.True(t, v.AdmitsNode(n), "should admit node %s %v", n.Name, n.Labels)
			}
			for _, n := range tc.rejects {
				assert.False(t, v.AdmitsNode(n), "should reject node %s %v", n.Name, n.Labels)
			}
		})
	}
}

func TestVolumeFacts(t *testing.T) {
	v := newVolume(makePV("p", "local", withCapacity("20Gi"), onHosts("h1")))
	assert.Equal(t, int64(20)<<30, v.Capacity)
	assert.Equal(t, "local", v.Class)
	assert.Equal(t, "p", v.Name())

	// The beta annotation names the class when the field is empty.
	pv := makePV("q", "")
	pv.Annotations = map[string]string{v1.BetaStorageClassAnnotation: "legacy"}
	assert.Equal(t, "legacy", newVolume(pv).Class)
}

// fixture indexes a small cluster:
//
//	node-a (hostname host-a, zone z1), node-b (hostname host-b, zone z2),
//	"host-b" (a node NAMED host-b whose hostname label is host-c, zone z1),
//	node-nolabel (no hostname label, zone z1).
func fixture(t *testing.T) (*Index, map[string]*v1.Node) {
	t.Helper()
	x := New()
	nodes := map[string]*v1.Node{
		"node-a":       hostNode("node-a", "host-a", zoneKey, "z1"),
		"node-b":       hostNode("node-b", "host-b", zoneKey, "z2"),
		"host-b":       hostNode("host-b", "host-c", zoneKey, "z1"),
		"node-nolabel": makeNode("node-nolabel", map[string]string{zoneKey: "z1"}),
	}
	for _, n := range nodes {
		x.SetNode(n)
	}
	for _, pv := range []*v1.PersistentVolume{
		makePV("a-2", "local", onHosts("host-a")),
		makePV("a-1", "local", onHosts("host-a")),
		makePV("a-fast", "fast", onHosts("host-a")),
		makePV("a-bad", "local", withTerms(term(req(v1.LabelHostname, v1.NodeSelectorOpIn, "host-a"), req("disks", v1.NodeSelectorOpGt, "x")))),
		makePV("b-1", "local", onHosts("host-b")),
		makePV("c-1", "local", onHosts("host-c")),
		makePV("ab-1", "local", onHosts("host-a", "host-b")),
		makePV("net-1", "local"),
		makePV("zone-z1", "local", withTerms(term(req(zoneKey, v1.NodeSelectorOpIn, "z1")))),
		makePV("zone-bad", "local", withTerms()),
		makePV("nfs-1", "nfs"),
	} {
		x.SetPV(pv)
	}
	return x, nodes
}

func TestForNode(t *testing.T) {
	x, nodes := fixture(t)
	tests := []struct {
		node, class string
		want        []string
	}{
		{"node-a", "local", []string{"a-1", "a-2", "ab-1", "net-1", "zone-z1"}},
		{"node-a", "fast", []string{"a-fast"}},
		{"node-a", "nfs", []string{"nfs-1"}},
		{"node-a", "none", []string{}},
		{"node-b", "local", []string{"ab-1", "b-1", "net-1"}},
		// Named host-b but labelled host-c: it gets host-c's volumes only.
		{"host-b", "local", []string{"c-1", "net-1", "zone-z1"}},
		// Without a hostname label a node gets only unpinned volumes.
		{"node-nolabel", "local", []string{"net-1", "zone-z1"}},
	}
	for _, tc := range tests {
		t.Run(tc.node+"/"+tc.class, func(t *testing.T) {
			got := x.ForNode(nodes[tc.node], tc.class, nil)
			assert.Equal(t, tc.want, names(got))
			for _, v := range got {
				assert.NoError(t, v.Invalid)
				assert.True(t, v.AdmitsNode(nodes[tc.node]))
			}
		})
	}

	t.Run("appends to buf and sorts only the appended part", func(t *testing.T) {
		buf := x.ForNode(nodes["node-a"], "fast", nil)
		buf = x.ForNode(nodes["node-b"], "local", buf)
		assert.Equal(t, []string{"a-fast", "ab-1", "b-1", "net-1"}, names(buf))
	})

	t.Run("invalid volumes are indexed but never returned", func(t *testing.T) {
		for _, name := range []string{"a-bad", "zone-bad"} {
			v, ok := x.Get(name)
			require.True(t, ok, name)
			assert.Error(t, v.Invalid, name)
			for _, n := range nodes {
				assert.False(t, v.AdmitsNode(n), "%s admits %s", name, n.Name)
			}
		}
		assert.Equal(t, 11, x.Stats().Volumes)
	})

	t.Run("a PV that moves host is re-listed", func(t *testing.T) {
		x.SetPV(makePV("a-1", "local", onHosts("host-b"), withRV("2")))
		assert.Equal(t, []string{"a-2", "ab-1", "net-1", "zone-z1"}, names(x.ForNode(nodes["node-a"], "local", nil)))
		assert.Equal(t, []string{"a-1", "ab-1", "b-1", "net-1"}, names(x.ForNode(nodes["node-b"], "local", nil)))
		x.SetPV(makePV("a-1", "local", withRV("3"), withTerms(term(req(zoneKey, v1.NodeSelectorOpIn, "z2")))))
		assert.Equal(t, []string{"a-1", "ab-1", "b-1", "net-1"}, names(x.ForNode(nodes["node-b"], "local", nil)))
		assert.Equal(t, []string{"a-2", "ab-1", "net-1", "zone-z1"}, names(x.ForNode(nodes["node-a"], "local", nil)))
		x.DeletePV("a-1")
		assert.Equal(t, []string{"ab-1", "b-1", "net-1"}, names(x.ForNode(nodes["node-b"], "local", nil)))
		_, ok := x.Get("a-1")
		assert.False(t, ok)
	})
}

func TestAssumeRestore(t *testing.T) {
	node := hostNode("node-a", "host-a")
	newIndex := func() (*Index, *v1.PersistentVolume) {
		x := New()
		x.SetNode(node)
		pv := makePV("p1", "local", onHosts("host-a"), withRV("5"))
		x.SetPV(pv)
		return x, pv
	}

	t.Run("assume overlays the copy", func(t *testing.T) {
		x, pv := newIndex()
		a := bound(pv, "ns", "c1", "uid-1")
		require.NoError(t, x.Assume(a))
		assert.True(t, x.IsAssumed("p1"))
		v, _ := x.Get("p1")
		assert.Same(t, a, v.PV)
		api, _ := x.APIObject("p1")
		assert.Same(t, pv, api, "APIObject ignores assumptions")
		assert.Equal(t, []string{"p1"}, names(x.ReferencingClaim("ns", "c1")))
		got := x.ForNode(node, "local", nil)
		require.Len(t, got, 1)
		assert.Same(t, a, got[0].PV)
		assert.Equal(t, Stats{Volumes: 1, Assumed: 1, Hosts: 1, Nodes: 1}, x.Stats())
	})

	t.Run("assume requires the indexed resourceVersion", func(t *testing.T) {
		x, pv := newIndex()
		stale := bound(pv, "ns", "c1", "uid-1")
		stale.ResourceVersion = "4"
		assert.Error(t, x.Assume(stale))
		assert.False(t, x.IsAssumed("p1"))
		assert.Empty(t, x.ReferencingClaim("ns", "c1"))
	})

	t.Run("assume of an unknown PV fails", func(t *testing.T) {
		x, _ := newIndex()
		assert.Error(t, x.Assume(makePV("nope", "local")))
	})

	t.Run("informer update with the same resourceVersion keeps the assumption", func(t *testing.T) {
		x, pv := newIndex()
		a := bound(pv, "ns", "c1", "uid-1")
		require.NoError(t, x.Assume(a))
		x.SetPV(pv.DeepCopy()) // resync
		assert.True(t, x.IsAssumed("p1"))
		v, _ := x.Get("p1")
		assert.Same(t, a, v.PV)
	})

	t.Run("informer update with a new resourceVersion drops the assumption", func(t *testing.T) {
		x, pv := newIndex()
		a := bound(pv, "ns", "c1", "uid-1")
		require.NoError(t, x.Assume(a))
		newer := pv.DeepCopy()
		newer.ResourceVersion = "6"
		v := x.SetPV(newer)
		assert.Same(t, newer, v.PV)
		assert.False(t, x.IsAssumed("p1"))
		assert.Empty(t, x.ReferencingClaim("ns", "c1"))
		// Restoring the dropped copy later changes nothing.
		x.Restore(a)
		v, _ = x.Get("p1")
		assert.Same(t, newer, v.PV)
	})

	t.Run("restore drops only the exact copy it is given", func(t *testing.T) {
		x, pv := newIndex()
		a := bound(pv, "ns", "c1", "uid-1")
		require.NoError(t, x.Assume(a))
		x.Restore(bound(pv, "ns", "c1", "uid-1")) // equal, not the same
		assert.True(t, x.IsAssumed("p1"))
		x.Restore(a)
		assert.False(t, x.IsAssumed("p1"))
		v, _ := x.Get("p1")
		assert.Same(t, pv, v.PV)
		assert.Empty(t, x.ReferencingClaim("ns", "c1"))
		x.Restore(a) // idempotent
		assert.False(t, x.IsAssumed("p1"))
	})

	t.Run("a later assume for the same claim survives restore of the earlier one", func(t *testing.T) {
		x, pv := newIndex()
		a1 := bound(pv, "ns", "c1", "uid-1")
		a2 := bound(pv, "ns", "c1", "uid-1")
		require.NoError(t, x.Assume(a1))
		require.NoError(t, x.Assume(a2))
		x.Restore(a1)
		v, _ := x.Get("p1")
		assert.Same(t, a2, v.PV)
	})

	t.Run("a volume assumed for one claim cannot be assumed for another", func(t *testing.T) {
		x, pv := newIndex()
		a1 := bound(pv, "ns", "c1", "uid-1")
		require.NoError(t, x.Assume(a1))
		assert.Error(t, x.Assume(bound(pv, "ns", "c2", "uid-2")))
		v, _ := x.Get("p1")
		assert.Same(t, a1, v.PV)
		x.Restore(a1)
		assert.NoError(t, x.Assume(bound(pv, "ns", "c2", "uid-2")))
	})

	t.Run("delete drops the assumption", func(t *testing.T) {
		x, pv := newIndex()
		require.NoError(t, x.Assume(bound(pv, "ns", "c1", "uid-1")))
		x.DeletePV("p1")
		assert.False(t, x.IsAssumed("p1"))
		assert.Empty(t, x.ForNode(node, "local", nil))
		assert.Empty(t, x.ReferencingClaim("ns", "c1"))
		assert.Equal(t, 0, x.Stats().Volumes)
	})
}

func TestReferencingClaim(t *testing.T) {
	x := New()
	x.SetPV(makePV("p2", "local", withClaimRef("ns", "c1", "")))
	x.SetPV(makePV("p1", "local", withClaimRef("ns", "c1", "uid")))
	x.SetPV(makePV("p3", "local", withClaimRef("other", "c1", "")))
	x.SetPV(makePV("p4", "local"))
	assert.Equal(t, []string{"p1", "p2"}, names(x.ReferencingClaim("ns", "c1")))
	assert.Equal(t, []string{"p3"}, names(x.ReferencingClaim("other", "c1")))
	assert.Empty(t, x.ReferencingClaim("ns", "c2"))

	// Released by an update: no longer listed.
	x.SetPV(makePV("p2", "local", withRV("2")))
	assert.Equal(t, []string{"p1"}, names(x.ReferencingClaim("ns", "c1")))
	// Re-pointed at another claim.
	x.SetPV(makePV("p1", "local", withRV("2"), withClaimRef("ns", "c2", "")))
	assert.Empty(t, x.ReferencingClaim("ns", "c1"))
	assert.Equal(t, []string{"p1"}, names(x.ReferencingClaim("ns", "c2")))
	x.DeletePV("p1")
	assert.Empty(t, x.ReferencingClaim("ns", "c2"))
}

func TestNodesWithHostnames(t *testing.T) {
	x := New()
	x.SetNode(hostNode("n1", "h1"))
	x.SetNode(hostNode("n2", "h1")) // two nodes may share a hostname label
	x.SetNode(hostNode("n3", "h3"))
	x.SetNode(makeNode("n4", nil))
	assert.Equal(t, sets.New("n1", "n2"), x.NodesWithHostnames([]string{"h1"}))
	assert.Equal(t, sets.New("n1", "n2", "n3"), x.NodesWithHostnames([]string{"h1", "h3", "h9"}))
	assert.Equal(t, sets.New[string](), x.NodesWithHostnames([]string{"n1", "n4"}), "node names are not hostnames")
	assert.Equal(t, 3, x.Stats().Nodes)

	// Relabel n2.
	x.SetNode(hostNode("n2", "h2"))
	assert.Equal(t, sets.New("n1"), x.NodesWithHostnames([]string{"h1"}))
	assert.Equal(t, sets.New("n2"), x.NodesWithHostnames([]string{"h2"}))
	// An unchanged update.
	x.SetNode(hostNode("n2", "h2"))
	assert.Equal(t, sets.New("n2"), x.NodesWithHostnames([]string{"h2"}))
	// The label is removed from n1.
	x.SetNode(makeNode("n1", map[string]string{"other": "x"}))
	assert.Equal(t, sets.New[string](), x.NodesWithHostnames([]string{"h1"}))
	// A label is added to n4.
	x.SetNode(hostNode("n4", "h1"))
	assert.Equal(t, sets.New("n4"), x.NodesWithHostnames([]string{"h1"}))
	// Deletion.
	x.DeleteNode("n3")
	assert.Equal(t, sets.New[string](), x.NodesWithHostnames([]string{"h3"}))
	x.DeleteNode("n3") // unknown: no-op
	x.DeleteNode("n2")
	assert.Equal(t, sets.New("n4"), x.NodesWithHostnames([]string{"h1", "h2", "h3"}))
	assert.Equal(t, 1, x.Stats().Nodes)
}

// TestConcurrentAccess runs readers (ForNode, Get, ReferencingClaim,
// NodesWithHostnames) against writers (SetPV, Assume, Restore, DeletePV,
// SetNode). Run with -race.
func TestConcurrentAccess(t *testing.T) {
	const hosts, perHost = 20, 5
	x := New()
	var nodes []*v1.Node
	for h := 0; h < hosts; h++ {
		n := hostNode(fmt.Sprintf("node-%d", h), fmt.Sprintf("host-%d", h))
		nodes = append(nodes, n)
		x.SetNode(n)
		for i := 0; i < perHost; i++ {
			x.SetPV(makePV(fmt.Sprintf("pv-%d-%d", h, i), "local", onHosts(n.Labels[v1.LabelHostname])))
		}
	}
	x.SetPV(makePV("net", "local"))

	stop := make(chan struct{})
	var readers, writers sync.WaitGroup
	for r := 0; r < 3; r++ {
		readers.Add(1)
		go func(seed int64) {
			defer readers.Done()
			rng := rand.New(rand.NewSource(seed))
			var buf []*Volume
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := nodes[rng.Intn(len(nodes))]
				buf = x.ForNode(n, "local", buf[:0])
				for _, v := range buf {
					// Read every field Filter reads.
					_ = v.PV.Name
					_ = v.PV.Spec.ClaimRef
					_ = v.Capacity
					if !v.AdmitsNode(n) {
						t.Errorf("ForNode(%s) returned %s, which does not admit it", n.Name, v.Name())
					}
				}
				_, _ = x.Get(fmt.Sprintf("pv-%d-0", rng.Intn(hosts)))
				_ = x.ReferencingClaim("ns", "c"+strconv.Itoa(rng.Intn(4)))
				_ = x.NodesWithHostnames([]string{n.Labels[v1.LabelHostname]})
				_ = x.Stats()
			}
		}(int64(r))
	}
	for w := 0; w < 4; w++ {
		writers.Add(1)
		go func(w int) {
			defer writers.Done()
			rng := rand.New(rand.NewSource(int64(100 + w)))
			rv := 1000 * (w + 1)
			for i := 0; i < 300; i++ {
				h, p := rng.Intn(hosts), rng.Intn(perHost)
				name := fmt.Sprintf("pv-%d-%d", h, p)
				switch rng.Intn(6) {
				case 0: // informer update
					rv++
					x.SetPV(makePV(name, "local", onHosts(fmt.Sprintf("host-%d", h)), withRV(strconv.Itoa(rv))))
				case 1, 2: // Reserve, then Unreserve
					cur, ok := x.APIObject(name)
					if !ok {
						continue
					}
					a := bound(cur, "ns", "c"+strconv.Itoa(w), types.UID("uid-"+strconv.Itoa(w)))
					if x.Assume(a) == nil {
						x.Restore(a)
					}
				case 3: // node relabel
					x.SetNode(hostNode(fmt.Sprintf("node-%d", h), fmt.Sprintf("host-%d", h), "rev", strconv.Itoa(i)))
				case 4: // delete and re-add
					x.DeletePV(name)
					rv++
					x.SetPV(makePV(name, "local", onHosts(fmt.Sprintf("host-%d", h)), withRV(strconv.Itoa(rv))))
				case 5:
					_ = x.IsAssumed(name)
				}
			}
		}(w)
	}
	writers.Wait()
	close(stop)
	readers.Wait()

	assert.Equal(t, hosts*perHost+1, x.Stats().Volumes)
	assert.Equal(t, 0, x.Stats().Assumed, "every successful Assume was restored")
	for _, n := range nodes {
		assert.Len(t, x.ForNode(n, "local", nil), perHost+1)
	}
}

// An event older than the version already indexed (the plugin refreshes the
// index from the informer store ahead of its own handler) must not regress
// the entry; a recreated PV (new UID) always replaces the old one.
func TestSetPVIgnoresOlderVersions(t *testing.T) {
	x := New()
	x.SetPV(makePV("pv", "local", withRV("5"), withCapacity("20Gi")))
	x.SetPV(makePV("pv", "local", withRV("4"), withCapacity("10Gi")))
	v, ok := x.Get("pv")
	require.True(t, ok)
	assert.Equal(t, "5", v.PV.ResourceVersion)
	assert.Equal(t, int64(20<<30), v.Capacity)

	x.SetPV(makePV("pv", "local", withRV("6"), withCapacity("30Gi")))
	v, _ = x.Get("pv")
	assert.Equal(t, "6", v.PV.ResourceVersion)

	recreated := makePV("pv", "local", withRV("3"))
	recreated.UID = "new"
	x.SetPV(recreated)
	v, _ = x.Get("pv")
	assert.Equal(t, recreated, v.PV)
}

// TestForNodeOrder checks that ForNode keeps returning volumes sorted by
// name as the per-host and per-class lists it merges are updated in place.
func TestForNodeOrder(t *testing.T) {
	nodeA := hostNode("node-a", "host-a", zoneKey, "z1")
	nodeB := hostNode("node-b", "host-b", zoneKey, "z2")
	nodes := map[string]*v1.Node{"node-a": nodeA, "node-b": nodeB}
	// Pinned (v1, v3, v5, vab) and unpinned (v2, v4) names interleave, and
	// v0 is pinned to host-a in another class, so ForNode must merge both
	// lists and skip other classes. Added out of order.
	base := func() *Index {
		x := New()
		x.SetNode(nodeA)
		x.SetNode(nodeB)
		for _, pv := range []*v1.PersistentVolume{
			makePV("v5", "local", onHosts("host-a")),
			makePV("v2", "local"),
			makePV("vab", "local", onHosts("host-a", "host-b")),
			makePV("v3", "local", onHosts("host-a")),
			makePV("v0", "fast", onHosts("host-a")),
			makePV("v4", "local", withTerms(term(req(zoneKey, v1.NodeSelectorOpIn, "z1")))),
			makePV("v1", "local", onHosts("host-a")),
		} {
			x.SetPV(pv)
		}
		return x
	}
	mustAssume := func(t *testing.T, x *Index, pv *v1.PersistentVolume) {
		t.Helper()
		require.NoError(t, x.Assume(pv))
	}
	tests := []struct {
		name  string
		steps func(t *testing.T, x *Index)
		// want maps "node/class" to the expected names.
		want map[string][]string
	}{
		{
			name:  "adds in any order",
			steps: func(*testing.T, *Index) {},
			want: map[string][]string{
				"node-a/local": {"v1", "v2", "v3", "v4", "v5", "vab"},
				"node-a/fast":  {"v0"},
				"node-b/local": {"v2", "vab"},
				"node-b/fast":  {},
			},
		},
		{
			name: "update without moving",
			steps: func(_ *testing.T, x *Index) {
				x.SetPV(makePV("v3", "local", onHosts("host-a"), withRV("2"), withCapacity("20Gi")))
				x.SetPV(makePV("v2", "local", withRV("2"), withCapacity("20Gi")))
			},
			want: map[string][]string{
				"node-a/local": {"v1", "v2", "v3", "v4", "v5", "vab"},
				"node-b/local": {"v2", "vab"},
			},
		},
		{
			name: "update moves a volume to another host",
			steps: func(_ *testing.T, x *Index) {
				x.SetPV(makePV("v3", "local", onHosts("host-b"), withRV("2")))
			},
			want: map[string][]string{
				"node-a/local": {"v1", "v2", "v4", "v5", "vab"},
				"node-b/local": {"v2", "v3", "vab"},
			},
		},
		{
			name: "update drops one host of a multi-host volume",
			steps: func(_ *testing.T, x *Index) {
				x.SetPV(makePV("vab", "local", onHosts("host-b"), withRV("2")))
			},
			want: map[string][]string{
				"node-a/local": {"v1", "v2", "v3", "v4", "v5"},
				"node-b/local": {"v2", "vab"},
			},
		},
		{
			name: "update changes the class of a pinned and an unpinned volume",
			steps: func(_ *testing.T, x *Index) {
				x.SetPV(makePV("v1", "fast", onHosts("host-a"), withRV("2")))
				x.SetPV(makePV("v2", "fast", withRV("2")))
			},
			want: map[string][]string{
				"node-a/local": {"v3", "v4", "v5", "vab"},
				"node-a/fast":  {"v0", "v1", "v2"},
				"node-b/local": {"vab"},
				"node-b/fast":  {"v2"},
			},
		},
		{
			name: "update unpins a volume and pins another",
			steps: func(_ *testing.T, x *Index) {
				x.SetPV(makePV("v5", "local", withRV("2")))
				x.SetPV(makePV("v2", "local", onHosts("host-b"), withRV("2")))
			},
			want: map[string][]string{
				"node-a/local": {"v1", "v3", "v4", "v5", "vab"},
				"node-b/local": {"v2", "v5", "vab"},
			},
		},
		{
			name: "deletes",
			steps: func(_ *testing.T, x *Index) {
				x.DeletePV("v3")
				x.DeletePV("v2")
				x.DeletePV("v0")
				x.DeletePV("nope")
			},
			want: map[string][]string{
				"node-a/local": {"v1", "v4", "v5", "vab"},
				"node-a/fast":  {},
				"node-b/local": {"vab"},
			},
		},
		{
			name: "delete and re-add",
			steps: func(_ *testing.T, x *Index) {
				x.DeletePV("v1")
				x.DeletePV("v4")
				x.SetPV(makePV("v4", "local", withTerms(term(req(zoneKey, v1.NodeSelectorOpIn, "z1")))))
				x.SetPV(makePV("v1", "local", onHosts("host-a")))
			},
			want: map[string][]string{
				"node-a/local": {"v1", "v2", "v3", "v4", "v5", "vab"},
				"node-b/local": {"v2", "vab"},
			},
		},
		{
			name: "assume keeps the order",
			steps: func(t *testing.T, x *Index) {
				pv, _ := x.APIObject("v3")
				mustAssume(t, x, bound(pv, "ns", "c1", "uid-1"))
				pv, _ = x.APIObject("v2")
				mustAssume(t, x, bound(pv, "ns", "c2", "uid-2"))
			},
			want: map[string][]string{
				"node-a/local": {"v1", "v2", "v3", "v4", "v5", "vab"},
				"node-b/local": {"v2", "vab"},
			},
		},
		{
			name: "assume of a copy on another host and class, then restore",
			steps: func(t *testing.T, x *Index) {
				pv, _ := x.APIObject("v3")
				a := bound(pv, "ns", "c1", "uid-1")
				a.Spec.NodeAffinity = nil
				a.Spec.StorageClassName = "fast"
				mustAssume(t, x, a)
				assert.Equal(t, []string{"v1", "v2", "v4", "v5", "vab"}, names(x.ForNode(nodeA, "local", nil)))
				assert.Equal(t, []string{"v0", "v3"}, names(x.ForNode(nodeA, "fast", nil)))
				assert.Equal(t, []string{"v3"}, names(x.ForNode(nodeB, "fast", nil)))
				x.Restore(a)
			},
			want: map[string][]string{
				"node-a/local": {"v1", "v2", "v3", "v4", "v5", "vab"},
				"node-a/fast":  {"v0"},
				"node-b/fast":  {},
			},
		},
		{
			name: "informer update replaces an assumed copy",
			steps: func(t *testing.T, x *Index) {
				pv, _ := x.APIObject("v1")
				mustAssume(t, x, bound(pv, "ns", "c1", "uid-1"))
				x.SetPV(makePV("v1", "local", onHosts("host-b"), withRV("2")))
			},
			want: map[string][]string{
				"node-a/local": {"v2", "v3", "v4", "v5", "vab"},
				"node-b/local": {"v1", "v2", "vab"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := base()
			tc.steps(t, x)
			for key, want := range tc.want {
				nodeName, class, _ := strings.Cut(key, "/")
				assert.Equal(t, want, names(x.ForNode(nodes[nodeName], class, nil)), key)
			}
		})
	}
}

// TestForNodeMatchesScan applies random updates and compares ForNode with
// a scan of every volume, sorted by name.
func TestForNodeMatchesScan(t *testing.T) {
	hosts := []string{"h0", "h1", "h2"}
	classes := []string{"c0", "c1"}
	var nodes []*v1.Node
	for i, h := range hosts {
		nodes = append(nodes, hostNode("n"+strconv.Itoa(i), h, zoneKey, "z"+strconv.Itoa(i%2)))
	}
	nodes = append(nodes, makeNode("unlabelled", map[string]string{zoneKey: "z0"}))
	x := New()
	for _, n := range nodes {
		x.SetNode(n)
	}
	rng := rand.New(rand.NewSource(1))
	var pvNames []string
	for i := 0; i < 20; i++ {
		pvNames = append(pvNames, fmt.Sprintf("pv-%02d", i))
	}
	randomPV := func(name string, rv int) *v1.PersistentVolume {
		class := classes[rng.Intn(len(classes))]
		switch rng.Intn(4) {
		case 0:
			return makePV(name, class, withRV(strconv.Itoa(rv)))
		case 1:
			return makePV(name, class, withRV(strconv.Itoa(rv)), withTerms(term(req(zoneKey, v1.NodeSelectorOpIn, "z"+strconv.Itoa(rng.Intn(2))))))
		case 2:
			return makePV(name, class, withRV(strconv.Itoa(rv)), onHosts(hosts[rng.Intn(len(hosts))], hosts[rng.Intn(len(hosts))]))
		default:
			return makePV(name, class, withRV(strconv.Itoa(rv)), onHosts(hosts[rng.Intn(len(hosts))]))
		}
	}
	for step := 0; step < 500; step++ {
		name := pvNames[rng.Intn(len(pvNames))]
		switch rng.Intn(4) {
		case 0:
			x.DeletePV(name)
		case 1:
			if pv, ok := x.APIObject(name); ok && !x.IsAssumed(name) {
				a := randomPV(name, 0)
				a.ResourceVersion = pv.ResourceVersion
				require.NoError(t, x.Assume(a))
				if rng.Intn(2) == 0 {
					x.Restore(a)
				}
			}
		default:
			x.SetPV(randomPV(name, step+1))
		}
		for _, n := range nodes {
			for _, class := range classes {
				want := []string{}
				for _, name := range pvNames {
					if v, ok := x.Get(name); ok && v.Class == class && v.AdmitsNode(n) {
						want = append(want, name)
					}
				}
				require.Equal(t, want, names(x.ForNode(n, class, nil)), "step %d, node %s, class %s", step, n.Name, class)
			}
		}
	}
}
