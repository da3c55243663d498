package matching

import (
	"math"
	"sort"
)

// Claim is a claim that needs a volume on the node being evaluated.
type Claim struct {
	// Request is the requested storage in bytes.
	Request int64
	// Provisionable claims may be left without a static volume; the caller
	// then checks dynamic provisioning for them.
	Provisionable bool
}

// Volume is a candidate volume on the node being evaluated.
type Volume struct {
	// Capacity is the volume's storage capacity in bytes.
	Capacity int64
}

// Compatible reports whether claim i may be bound to volume j. It is only
// consulted for pairs the caller has already found acceptable in every way
// except exclusivity (class, size, access modes, selector, ...).
type Compatible func(claim, volume int) bool

// Unassigned marks a claim left to dynamic provisioning in Result.VolumeOf.
const Unassigned = -1

// Result is an optimal assignment.
type Result struct {
	// VolumeOf[i] is the volume index given to claim i, or Unassigned.
	VolumeOf []int
	// Static is the number of claims given a static volume.
	Static int
	// Waste is the capacity left unused: the sum over statically matched
	// claims of volume capacity minus request, in bytes.
	Waste int64
}

// Infeasible explains why no assignment exists.
type Infeasible struct {
	// Claims is a smallest-known set of claims (indices) that cannot all be
	// satisfied: together they can use fewer volumes than there are claims
	// (Hall's condition is violated). A single claim means it fits no volume.
	Claims []int
	// Volumes are the volume indices that set of claims competes for.
	Volumes []int
}

// Assign finds an assignment of claims to distinct compatible volumes such
// that every claim that is not Provisionable gets a volume. Among such
// assignments it maximises the number of statically matched claims (as the
// in-tree plugin prefers existing volumes to provisioning), and among those
// it minimises Waste. It returns nil and an explanation when no assignment
// exists.
//
// A claim only ever needs one of its len(claims) smallest compatible volumes:
// the other claims take at most len(claims)-1 of them, and swapping a larger
// volume for a free smaller one never increases waste. Assign prunes to those
// candidates first, so its cost is O(n^4) in the number of claims and linear
// in the number of volumes.
func Assign(claims []Claim, volumes []Volume, compatible Compatible) (*Result, *Infeasible) {
	n := len(claims)
	if n == 0 {
		return &Result{VolumeOf: []int{}}, nil
	}
	if n == 1 {
		return assignOne(claims[0], volumes, compatible)
	}
	cand := candidates(claims, volumes, compatible)
	return hungarian(claims, volumes, cand)
}

// assignOne is the common single-claim case: the smallest compatible volume.
func assignOne(c Claim, volumes []Volume, compatible Compatible) (*Result, *Infeasible) {
	best := -1
	for j := range volumes {
		if !compatible(0, j) {
			continue
		}
		if best < 0 || volumes[j].Capacity < volumes[best].Capacity {
			best = j
		}
	}
	if best >= 0 {
		return &Result{VolumeOf: []int{best}, Static: 1, Waste: volumes[best].Capacity - c.Request}, nil
	}
	if c.Provisionable {
		return &Result{VolumeOf: []int{Unassigned}}, nil
	}
	return nil, &Infeasible{Claims: []int{0}}
}

// candidates returns, per claim, its up to n smallest compatible volumes
// (ties broken by index, for determinism).
func candidates(claims []Claim, volumes []Volume, compatible Compatible) [][]int {
	n := len(claims)
	out := make([][]int, n)
	for i := range claims {
		var list []int
		for j := range volumes {
			if compatible(i, j) {
				list = append(list, j)
			}
		}
		sort.SliceStable(list, func(a, b int) bool {
			return volumes[list[a]].Capacity < volumes[list[b]].Capacity
		})
		if len(list) > n {
			list = list[:n]
		}
		out[i] = list
	}
	return out
}

// hungarian solves the pruned problem as a rectangular assignment problem
// (rows: claims; columns: candidate volumes plus one "provision" column per
// claim) with the shortest-augmenting-path Hungarian method. Forbidden pairs
// are skipped rather than given a large cost, so feasibility is exact.
//
// Costs are lexicographic: a provision column costs more than any possible
// total waste, so the number of static matches is maximised first. Values
// are scaled down by a power of two only when they would overflow int64
// (volumes of exabytes), which can only blur ties in waste.
func hungarian(claims []Claim, volumes []Volume, cand [][]int) (*Result, *Infeasible) {
	n := len(claims)
	// Columns: distinct candidate volumes, then n provision columns.
	colVol := make([]int, 0, n*n+n)
	colOf := make(map[int]int, n*n)
	for _, list := range cand {
		for _, j := range list {
			if _, ok := colOf[j]; !ok {
				colOf[j] = len(colVol)
				colVol = append(colVol, j)
			}
		}
	}
	nStatic := len(colVol)
	m := nStatic + n
	for k := 0; k < n; k++ {
		colVol = append(colVol, Unassigned)
	}

	// Upper bound on total waste and the scale that keeps sums in range.
	var maxWaste uint64
	for i, list := range cand {
		var w uint64
		for _, j := range list {
			if d := uint64(volumes[j].Capacity - claims[i].Request); d > w {
				w = d
			}
		}
		maxWaste += w
	}
	shift := 0
	// Potentials stay within a few multiples of (n+1)*penalty; keep headroom.
	limit := uint64(math.MaxInt64) / uint64(4*(n+2)*(n+2))
	for maxWaste+1 > limit {
		maxWaste >>= 1
		shift++
	}
	penalty := int64(maxWaste) + 1

	const forbidden = math.MaxInt64
	cost := func(i, c int) int64 {
		if c >= nStatic {
			if claims[i].Provisionable {
				return penalty
			}
			return forbidden
		}
		return (volumes[colVol[c]].Capacity - claims[i].Request) >> shift
	}
	allowed := make([][]bool, n)
	for i := range allowed {
		allowed[i] = make([]bool, nStatic)
		for _, j := range cand[i] {
			allowed[i][colOf[j]] = true
		}
	}
	costOf := func(i, c int) int64 {
		if c < nStatic && !allowed[i][c] {
			return forbidden
		}
		return cost(i, c)
	}

	// e-maxx formulation, 1-based with a virtual column 0.
	u := make([]int64, n+1)
	v := make([]int64, m+1)
	p := make([]int, m+1) // p[c] = row matched to column c (0 = none)
	way := make([]int, m+1)
	minv := make([]int64, m+1)
	used := make([]bool, m+1)
	for i := 1; i <= n; i++ {
		p[0] = i
		j0 := 0
		for c := range minv {
			minv[c] = forbidden
			used[c] = false
		}
		for {
			used[j0] = true
			i0 := p[j0]
			delta := int64(forbidden)
			j1 := -1
			for c := 1; c <= m; c++ {
				if used[c] {
					continue
				}
				if w := costOf(i0-1, c-1); w != forbidden {
					if cur := w - u[i0] - v[c]; cur < minv[c] {
						minv[c] = cur
						way[c] = j0
					}
				}
				if minv[c] < delta {
					delta = minv[c]
					j1 = c
				}
			}
			if j1 < 0 {
				return nil, hallViolation(p, used, i, cand)
			}
			for c := 0; c <= m; c++ {
				if used[c] {
					u[p[c]] += delta
					v[c] -= delta
				} else if minv[c] != forbidden {
					minv[c] -= delta
				}
			}
			j0 = j1
			if p[j0] == 0 {
				break
			}
		}
		for j0 != 0 {
			j1 := way[j0]
			p[j0] = p[j1]
			j0 = j1
		}
	}

	res := &Result{VolumeOf: make([]int, n)}
	for c := 1; c <= m; c++ {
		if p[c] == 0 {
			continue
		}
		i := p[c] - 1
		res.VolumeOf[i] = colVol[c-1]
		if colVol[c-1] != Unassigned {
			res.Static++
			res.Waste += volumes[colVol[c-1]].Capacity - claims[i].Request
		}
	}
	return res, nil
}

// hallViolation reports the rows reached by the failed augmenting search:
// they are the claims being placed plus those holding every column they could
// reach, and together they fit fewer volumes than there are of them.
//
// Provisionable claims never appear in it: one of the n provision columns is
// always free for them. Claims in it have fewer than n candidates, so the
// pruning in candidates did not hide any volume from the explanation.
func hallViolation(p []int, used []bool, row int, cand [][]int) *Infeasible {
	inf := &Infeasible{Claims: []int{row - 1}}
	seen := make(map[int]bool)
	for c := 1; c < len(used); c++ {
		if used[c] && p[c] != 0 {
			inf.Claims = append(inf.Claims, p[c]-1)
		}
	}
	for _, i := range inf.Claims {
		for _, j := range cand[i] {
			if !seen[j] {
				seen[j] = true
				inf.Volumes = append(inf.Volumes, j)
			}
		}
	}
	sort.Ints(inf.Claims)
	sort.Ints(inf.Volumes)
	return inf
}
