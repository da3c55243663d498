package policy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	v1 "k8s.io/api/core/v1"
)

func pvWithTerms(terms ...v1.NodeSelectorTerm) *v1.PersistentVolume {
	pv := &v1.PersistentVolume{Spec: v1.PersistentVolumeSpec{
		PersistentVolumeSource: v1.PersistentVolumeSource{Local: &v1.LocalVolumeSource{Path: "/mnt/disk"}},
	}}
	if terms != nil {
		pv.Spec.NodeAffinity = &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: terms}}
	}
	return pv
}

func expr(key string, op v1.NodeSelectorOperator, values ...string) v1.NodeSelectorRequirement {
	return v1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

func TestVolumePinnedToNode(t *testing.T) {
	hostIn := func(values ...string) v1.NodeSelectorTerm {
		return v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{expr(v1.LabelHostname, v1.NodeSelectorOpIn, values...)}}
	}
	tests := []struct {
		name               string
		pv                 *v1.PersistentVolume
		nodeName, hostname string
		want               bool
	}{
		{name: "hostname matches", pv: pvWithTerms(hostIn("h1")), nodeName: "n1", hostname: "h1", want: true},
		{name: "hostname label differs from node name (k8s#125336)", pv: pvWithTerms(hostIn("h1")), nodeName: "h1.example.com", hostname: "h1", want: true},
		{name: "pinned to the node name, not the hostname", pv: pvWithTerms(hostIn("n1")), nodeName: "n1", hostname: "h1", want: false},
		{name: "other host", pv: pvWithTerms(hostIn("h2")), nodeName: "n1", hostname: "h1", want: false},
		{name: "no affinity", pv: pvWithTerms(), nodeName: "n1", hostname: "h1", want: false},
		{name: "nil pv", pv: nil, nodeName: "n1", hostname: "h1", want: false},
		{name: "two hosts: survives one", pv: pvWithTerms(hostIn("h1", "h2")), nodeName: "n1", hostname: "h1", want: false},
		{name: "two terms, two hosts", pv: pvWithTerms(hostIn("h1"), hostIn("h2")), nodeName: "n1", hostname: "h1", want: false},
		{name: "two terms, same host", pv: pvWithTerms(hostIn("h1"), hostIn("h1")), nodeName: "n1", hostname: "h1", want: true},
		{name: "hostname plus zone in one term", pv: pvWithTerms(v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{
			expr(v1.LabelTopologyZone, v1.NodeSelectorOpIn, "z1"), expr(v1.LabelHostname, v1.NodeSelectorOpIn, "h1")}}),
			nodeName: "n1", hostname: "h1", want: true},
		{name: "zone only", pv: pvWithTerms(v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{
			expr(v1.LabelTopologyZone, v1.NodeSelectorOpIn, "z1")}}), nodeName: "n1", hostname: "h1", want: false},
		{name: "one pinned term and one zone term", pv: pvWithTerms(hostIn("h1"), v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{
			expr(v1.LabelTopologyZone, v1.NodeSelectorOpIn, "z1")}}), nodeName: "n1", hostname: "h1", want: false},
		{name: "hostname NotIn", pv: pvWithTerms(v1.NodeSelectorTerm{MatchExpressions: []v1.NodeSelectorRequirement{
			expr(v1.LabelHostname, v1.NodeSelectorOpNotIn, "h2")}}), nodeName: "n1", hostname: "h1", want: false},
		{name: "metadata.name field", pv: pvWithTerms(v1.NodeSelectorTerm{MatchFields: []v1.NodeSelectorRequirement{
			expr("metadata.name", v1.NodeSelectorOpIn, "n1")}}), nodeName: "n1", hostname: "h1", want: true},
		{name: "metadata.name field of another node", pv: pvWithTerms(v1.NodeSelectorTerm{MatchFields: []v1.NodeSelectorRequirement{
			expr("metadata.name", v1.NodeSelectorOpIn, "n2")}}), nodeName: "n1", hostname: "h1", want: false},
		{name: "hostPath volume pinned by affinity (local-path-provisioner)", pv: func() *v1.PersistentVolume {
			pv := pvWithTerms(hostIn("h1"))
			pv.Spec.Local = nil
			pv.Spec.HostPath = &v1.HostPathVolumeSource{Path: "/opt/local-path-provisioner/x"}
			return pv
		}(), nodeName: "n1", hostname: "h1", want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, VolumePinnedToNode(tc.pv, tc.nodeName, tc.hostname))
		})
	}
}

func TestParseRef(t *testing.T) {
	r := ClaimRef{Namespace: "ns", Name: "data-db-0", UID: "1234-5678"}
	got, err := ParseRef(r.String())
	require.NoError(t, err)
	assert.Equal(t, r, got)
	assert.Equal(t, "ns/data-db-0", got.Key())
	for _, bad := range []string{"", "ns/name", "ns//uid", "a/b/c/d", "/n/u"} {
		_, err := ParseRef(bad)
		assert.Error(t, err, bad)
	}
}
