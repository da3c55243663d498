package perf

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
)

// Fixture is one benchmark size: Nodes nodes with PVsPerNode Available local
// PVs each (of assorted sizes), and Pods pods with ClaimsPerPod
// WaitForFirstConsumer claims each (of assorted requests).
type Fixture struct {
	Nodes        int `json:"nodes"`
	PVsPerNode   int `json:"pvsPerNode"`
	Pods         int `json:"pods"`
	ClaimsPerPod int `json:"claimsPerPod"`
}

// String is "NxKxMxC", the form ParseFixtures reads.
func (f Fixture) String() string {
	return fmt.Sprintf("%dx%dx%dx%d", f.Nodes, f.PVsPerNode, f.Pods, f.ClaimsPerPod)
}

// Label is a human-readable form for tables.
func (f Fixture) Label() string {
	return fmt.Sprintf("%d nodes × %d PVs, %d pods × %d claim(s)", f.Nodes, f.PVsPerNode, f.Pods, f.ClaimsPerPod)
}

// ParseFixtures reads a comma-separated list of "NxKxMxC" fixtures, e.g.
// "500x10x1000x1,5000x10x1000x1".
func ParseFixtures(s string) ([]Fixture, error) {
	var out []Fixture
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		fields := strings.Split(part, "x")
		if len(fields) != 4 {
			return nil, fmt.Errorf("fixture %q: want NODESxPVSxPODSxCLAIMS", part)
		}
		var n [4]int
		for i, f := range fields {
			v, err := strconv.Atoi(f)
			if err != nil || v <= 0 {
				return nil, fmt.Errorf("fixture %q: %q is not a positive integer", part, f)
			}
			n[i] = v
		}
		out = append(out, Fixture{Nodes: n[0], PVsPerNode: n[1], Pods: n[2], ClaimsPerPod: n[3]})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no fixture in %q", s)
	}
	return out, nil
}

const gi = int64(1) << 30

// pvSizesGi are the capacities local PVs are drawn from, and claimSizesGi
// the requests claims are drawn from. Each request sits just under a PV
// size, so a tight fit wastes a few GiB and a careless one a lot.
var (
	pvSizesGi    = []int64{10, 20, 30, 50, 80, 100, 150, 200, 300, 500}
	claimSizesGi = []int64{9, 18, 28, 45, 75, 95, 140, 190, 280}
)

type pvSpec struct {
	name     string
	node     int
	capacity int64
	// claim pre-binds the PV (limit run only).
	claim string
}

type claimSpec struct {
	name    string
	pod     int
	request int64
	// volume pre-binds the claim (limit run only).
	volume string
}

type podSpec struct {
	name   string
	claims []string
}

// plan is the concrete, deterministic content of a fixture: every run of
// one fixture creates exactly these objects.
type plan struct {
	f      Fixture
	nodes  []string
	pvs    []pvSpec
	claims []claimSpec
	pods   []podSpec
	// pvCapacity and claimRequest index the sizes by name.
	pvCapacity   map[string]int64
	claimRequest map[string]int64
}

func nodeName(i int) string { return fmt.Sprintf("n-%05d", i) }

// newPlan draws the fixture's sizes from a fixed seed. With prebind it also
// assigns every claim to a PV (pods round-robin over the nodes, each claim
// the smallest unused PV of its node that fits; a pod that does not fit its
// node goes to the next), writing claimRef/volumeName for the limit run.
func newPlan(f Fixture, prebind bool) (*plan, error) {
	r := rand.New(rand.NewPCG(uint64(f.Nodes)*1_000_003+uint64(f.PVsPerNode), uint64(f.Pods)*7919+uint64(f.ClaimsPerPod)))
	p := &plan{f: f, pvCapacity: map[string]int64{}, claimRequest: map[string]int64{}}
	for i := range f.Nodes {
		p.nodes = append(p.nodes, nodeName(i))
		for k := range f.PVsPerNode {
			pv := pvSpec{name: fmt.Sprintf("pv-%05d-%02d", i, k), node: i, capacity: pvSizesGi[r.IntN(len(pvSizesGi))] * gi}
			p.pvs = append(p.pvs, pv)
			p.pvCapacity[pv.name] = pv.capacity
		}
	}
	for i := range f.Pods {
		pod := podSpec{name: fmt.Sprintf("p-%05d", i)}
		for c := range f.ClaimsPerPod {
			cl := claimSpec{name: fmt.Sprintf("c-%05d-%d", i, c), pod: i, request: claimSizesGi[r.IntN(len(claimSizesGi))] * gi}
			p.claims = append(p.claims, cl)
			p.claimRequest[cl.name] = cl.request
			pod.claims = append(pod.claims, cl.name)
		}
		p.pods = append(p.pods, pod)
	}
	if prebind {
		if err := p.prebind(); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *plan) prebind() error {
	f := p.f
	used := make([]bool, len(p.pvs))
	claimIdx := 0
	for i := range p.pods {
		claims := p.claims[claimIdx : claimIdx+f.ClaimsPerPod]
		claimIdx += f.ClaimsPerPod
		placed := false
		for try := 0; try < f.Nodes && !placed; try++ {
			node := (i + try) % f.Nodes
			first := node * f.PVsPerNode
			// Largest claim first, each to the smallest unused PV that fits.
			order := make([]int, len(claims))
			for j := range order {
				order[j] = j
			}
			sort.Slice(order, func(a, b int) bool { return claims[order[a]].request > claims[order[b]].request })
			chosen := map[int]int{} // claim index → PV index
			taken := map[int]bool{}
			ok := true
			for _, j := range order {
				best := -1
				for k := first; k < first+f.PVsPerNode; k++ {
					if used[k] || taken[k] || p.pvs[k].capacity < claims[j].request {
						continue
					}
					if best < 0 || p.pvs[k].capacity < p.pvs[best].capacity {
						best = k
					}
				}
				if best < 0 {
					ok = false
					break
				}
				chosen[j] = best
				taken[best] = true
			}
			if !ok {
				continue
			}
			for j, k := range chosen {
				used[k] = true
				p.pvs[k].claim = claims[j].name
				claims[j].volume = p.pvs[k].name
			}
			placed = true
		}
		if !placed {
			return fmt.Errorf("fixture %s: pod %d fits no node for pre-binding", f, i)
		}
	}
	return nil
}
