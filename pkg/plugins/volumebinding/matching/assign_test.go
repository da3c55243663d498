package matching

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const gi = int64(1) << 30

// matrix turns a [claim][volume] table into a Compatible func.
func matrix(m [][]bool) Compatible {
	return func(i, j int) bool { return m[i][j] }
}

func TestAssign(t *testing.T) {
	tests := []struct {
		name       string
		claims     []Claim
		volumes    []Volume
		compatible [][]bool
		wantVolOf  []int // nil means infeasible
		wantWaste  int64
		wantClaims []int // claims named by the infeasibility explanation
	}{
		{
			name:      "no claims",
			wantVolOf: []int{},
		},
		{
			name:       "single claim takes the smallest fitting volume",
			claims:     []Claim{{Request: 10 * gi}},
			volumes:    []Volume{{100 * gi}, {12 * gi}, {50 * gi}},
			compatible: [][]bool{{true, true, true}},
			wantVolOf:  []int{1},
			wantWaste:  2 * gi,
		},
		{
			// The in-tree greedy loop gives A (smallest) the smallest fit,
			// P1, and then B (tier=fast) has nothing left.
			name:       "greedy selector trap: A=10Gi, B=20Gi tier=fast; P1=20Gi tier=fast, P2=100Gi",
			claims:     []Claim{{Request: 10 * gi}, {Request: 20 * gi}},
			volumes:    []Volume{{20 * gi}, {100 * gi}},
			compatible: [][]bool{{true, true}, {true, false}},
			wantVolOf:  []int{1, 0},
			wantWaste:  90 * gi,
		},
		{
			// Access modes expressed as compatibility: B (RWX) only fits P1.
			name:       "access-mode trap: A=5Gi RWO, B=10Gi RWX; P1=10Gi RWO+RWX, P2=20Gi RWO",
			claims:     []Claim{{Request: 5 * gi}, {Request: 10 * gi}},
			volumes:    []Volume{{10 * gi}, {20 * gi}},
			compatible: [][]bool{{true, true}, {true, false}},
			wantVolOf:  []int{1, 0},
			wantWaste:  15 * gi,
		},
		{
			name:       "least total waste, not smallest first",
			claims:     []Claim{{Request: 10 * gi}, {Request: 15 * gi}},
			volumes:    []Volume{{16 * gi}, {11 * gi}, {40 * gi}},
			compatible: [][]bool{{true, true, true}, {true, true, true}},
			wantVolOf:  []int{1, 0},
			wantWaste:  2 * gi,
		},
		{
			name:       "two claims compete for one volume",
			claims:     []Claim{{Request: 10 * gi}, {Request: 10 * gi}, {Request: 1 * gi}},
			volumes:    []Volume{{10 * gi}, {1 * gi}},
			compatible: [][]bool{{true, false}, {true, false}, {true, true}},
			wantClaims: []int{0, 1},
		},
		{
			name:       "claim with no compatible volume",
			claims:     []Claim{{Request: 10 * gi}, {Request: 200 * gi}},
			volumes:    []Volume{{100 * gi}},
			compatible: [][]bool{{true}, {false}},
			wantClaims: []int{1},
		},
		{
			name:       "provisionable claim falls back when volumes run out",
			claims:     []Claim{{Request: 10 * gi}, {Request: 10 * gi, Provisionable: true}},
			volumes:    []Volume{{10 * gi}},
			compatible: [][]bool{{true}, {true}},
			wantVolOf:  []int{0, Unassigned},
		},
		{
			name:       "static match preferred to provisioning even when wasteful",
			claims:     []Claim{{Request: 1 * gi, Provisionable: true}},
			volumes:    []Volume{{1000 * gi}},
			compatible: [][]bool{{true}},
			wantVolOf:  []int{0},
			wantWaste:  999 * gi,
		},
		{
			name:       "huge capacities do not overflow",
			claims:     []Claim{{Request: 1}, {Request: 4}},
			volumes:    []Volume{{1 << 62}, {1<<62 + 5}, {3}},
			compatible: [][]bool{{true, true, true}, {true, true, false}},
			wantVolOf:  []int{2, 0},
			wantWaste:  2 + (1<<62 - 4),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, inf := Assign(tc.claims, tc.volumes, matrix(tc.compatible))
			if tc.wantVolOf == nil {
				require.Nil(t, res)
				require.NotNil(t, inf)
				assert.Equal(t, tc.wantClaims, inf.Claims)
				return
			}
			require.Nil(t, inf)
			require.NotNil(t, res)
			assert.Equal(t, tc.wantVolOf, res.VolumeOf)
			assert.Equal(t, tc.wantWaste, res.Waste)
		})
	}
}

// oracle enumerates every assignment and returns the best (static, waste),
// or ok=false when none exists.
func oracle(claims []Claim, volumes []Volume, compatible Compatible) (static int, waste int64, ok bool) {
	taken := make([]bool, len(volumes))
	bestStatic, bestWaste := -1, int64(0)
	var rec func(i, s int, w int64)
	rec = func(i, s int, w int64) {
		if i == len(claims) {
			if s > bestStatic || (s == bestStatic && w < bestWaste) {
				bestStatic, bestWaste = s, w
			}
			return
		}
		if claims[i].Provisionable {
			rec(i+1, s, w)
		}
		for j := range volumes {
			if taken[j] || !compatible(i, j) {
				continue
			}
			taken[j] = true
			rec(i+1, s+1, w+volumes[j].Capacity-claims[i].Request)
			taken[j] = false
		}
	}
	rec(0, 0, 0)
	return bestStatic, bestWaste, bestStatic >= 0
}

// decode builds a small instance from fuzz bytes: up to 5 claims and 7
// volumes with sizes 1..16 and compatibility bits.
func decode(data []byte) ([]Claim, []Volume, [][]bool) {
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	n := int(next()%5) + 1
	m := int(next() % 8)
	claims := make([]Claim, n)
	volumes := make([]Volume, m)
	for i := range claims {
		b := next()
		claims[i] = Claim{Request: int64(b%16) + 1, Provisionable: b&0x80 != 0}
	}
	for j := range volumes {
		volumes[j] = Volume{Capacity: int64(next()%16) + 1}
	}
	comp := make([][]bool, n)
	for i := range comp {
		comp[i] = make([]bool, m)
		bitsByte := next()
		for j := range comp[i] {
			// Compatibility also requires the volume to be large enough,
			// as the plugin's checks guarantee.
			comp[i][j] = bitsByte&(1<<(j%8)) != 0 && volumes[j].Capacity >= claims[i].Request
		}
	}
	return claims, volumes, comp
}

func FuzzAssign(f *testing.F) {
	f.Add([]byte{1, 2, 9, 19, 20, 100, 0x03, 0x01})
	f.Add([]byte{2, 3, 10, 10, 1, 10, 1, 0x01, 0x01, 0x03})
	f.Add([]byte{4, 7, 3, 0x85, 7, 9, 1, 2, 3, 4, 5, 6, 7, 0xff, 0x0f, 0xf0, 0x55, 0xaa})
	f.Add([]byte{3, 2, 0x88, 8, 8, 8, 8, 0x03, 0x03, 0x03})
	f.Fuzz(func(t *testing.T, data []byte) {
		claims, volumes, comp := decode(data)
		compatible := matrix(comp)
		wantStatic, wantWaste, wantOK := oracle(claims, volumes, compatible)
		res, inf := Assign(claims, volumes, compatible)
		if !wantOK {
			if res != nil {
				t.Fatalf("Assign found %v, oracle says infeasible (claims %v volumes %v comp %v)", res.VolumeOf, claims, volumes, comp)
			}
			checkHall(t, inf, comp)
			return
		}
		if res == nil {
			t.Fatalf("Assign infeasible (%+v), oracle found static=%d waste=%d (claims %v volumes %v comp %v)", inf, wantStatic, wantWaste, claims, volumes, comp)
		}
		if res.Static != wantStatic || res.Waste != wantWaste {
			t.Fatalf("Assign static=%d waste=%d, oracle static=%d waste=%d (claims %v volumes %v comp %v)", res.Static, res.Waste, wantStatic, wantWaste, claims, volumes, comp)
		}
		// The result must be a valid assignment whose totals match.
		used := map[int]bool{}
		var static int
		var waste int64
		for i, j := range res.VolumeOf {
			if j == Unassigned {
				if !claims[i].Provisionable {
					t.Fatalf("claim %d unassigned but not provisionable", i)
				}
				continue
			}
			if used[j] || !comp[i][j] {
				t.Fatalf("claim %d given volume %d: reused=%v compatible=%v", i, j, used[j], comp[i][j])
			}
			used[j] = true
			static++
			waste += volumes[j].Capacity - claims[i].Request
		}
		if static != res.Static || waste != res.Waste {
			t.Fatalf("reported static=%d waste=%d, actual %d %d", res.Static, res.Waste, static, waste)
		}
	})
}

// checkHall verifies the explanation: the named claims can use fewer
// distinct volumes than there are of them.
func checkHall(t *testing.T, inf *Infeasible, comp [][]bool) {
	t.Helper()
	if inf == nil || len(inf.Claims) == 0 {
		t.Fatalf("infeasible without explanation")
	}
	nbrs := map[int]bool{}
	for _, i := range inf.Claims {
		for j, ok := range comp[i] {
			if ok {
				nbrs[j] = true
			}
		}
	}
	if len(nbrs) >= len(inf.Claims) {
		t.Fatalf("explanation claims %v reach %d volumes: not a Hall violation", inf.Claims, len(nbrs))
	}
}
