// Command perfchart turns the JSON results of test/perf (make bench-e2e)
// into a markdown table, one PNG chart per fixture (pods done over time,
// one line per scheduler) and Berth's end-to-end section of BENCHMARKS.md.
//
// It is a module of its own so that gonum.org/v1/plot and its font and
// image dependencies stay out of Berth's go.mod.
//
//	go run . -in ../../_output/perf -charts ../../docs/benchmarks -benchmarks ../../BENCHMARKS.md
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"image/color"
	"log"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Result mirrors the fields of test/perf.Result that the report uses.
type Result struct {
	Fixture struct {
		Nodes        int `json:"nodes"`
		PVsPerNode   int `json:"pvsPerNode"`
		Pods         int `json:"pods"`
		ClaimsPerPod int `json:"claimsPerPod"`
	} `json:"fixture"`
	FixtureName            string  `json:"fixtureName"`
	Mode                   string  `json:"mode"`
	Description            string  `json:"description"`
	StorageCapacityScoring bool    `json:"storageCapacityScoring"`
	PrebindClaimsPerSecond float64 `json:"prebindClaimsPerSecond"`
	Pods                   int     `json:"pods"`
	PodsDone               int     `json:"podsDone"`
	PodsBound              int     `json:"podsBound"`
	ClaimsBound            int     `json:"claimsBound"`
	TimedOut               bool    `json:"timedOut"`
	TimeoutSeconds         float64 `json:"timeoutSeconds"`
	CreateSeconds          float64 `json:"createSeconds"`
	DurationSeconds        float64 `json:"durationSeconds"`
	PodsPerSecond          float64 `json:"podsPerSecond"`
	APIWritesTotal         float64 `json:"apiWritesTotal"`
	ToClaimRef             struct {
		P50 float64 `json:"p50"`
	} `json:"toClaimRefSeconds"`
	ClaimRefToBound struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
	} `json:"claimRefToBoundSeconds"`
	Latency struct {
		P50 float64 `json:"p50"`
		P90 float64 `json:"p90"`
		P99 float64 `json:"p99"`
		Max float64 `json:"max"`
	} `json:"latencySeconds"`
	Bindings map[string]struct {
		PV       string `json:"pv"`
		Capacity int64  `json:"capacity"`
		Request  int64  `json:"request"`
	} `json:"bindings"`
	WastedBytes         int64              `json:"wastedBytes"`
	WastedGiB           float64            `json:"wastedGiB"`
	Misplaced           int                `json:"misplaced"`
	CPUSeconds          map[string]float64 `json:"cpuSeconds"`
	SchedulerCPUSeconds float64            `json:"schedulerCPUSeconds"`
	ProcessCPUSeconds   float64            `json:"processCPUSeconds"`
	HeapBaselineBytes   uint64             `json:"heapBaselineBytes"`
	HeapPeakBytes       uint64             `json:"heapPeakBytes"`
	Timeline            []float64          `json:"timeline"`
	Machine             struct {
		CPU       string `json:"cpu"`
		Cores     int    `json:"cores"`
		MemoryGiB int    `json:"memoryGiB"`
		Kernel    string `json:"kernel"`
		Go        string `json:"go"`
		LoadAvg   string `json:"loadavg"`
	} `json:"machine"`
	Started string `json:"started"`
	Error   string `json:"error"`
}

const gib = float64(1 << 30)

var modeOrder = map[string]int{"berth": 0, "berth-pvcontroller": 1, "in-tree": 2, "limit": 3}

const (
	beginMarker = "<!-- bench-e2e:begin (written by make bench-e2e: hack/perfchart) -->"
	endMarker   = "<!-- bench-e2e:end -->"
)

func main() {
	in := flag.String("in", "_output/perf", "directory with the <fixture>-<mode>.json results")
	charts := flag.String("charts", "docs/benchmarks", "directory for the PNG charts")
	benchmarks := flag.String("benchmarks", "", "BENCHMARKS.md to update (its end-to-end section only); empty: print the section")
	chartLink := flag.String("chart-link", "docs/benchmarks", "path of the charts directory as linked from BENCHMARKS.md")
	notesFile := flag.String("notes", "", "markdown file with the analysis to include after the targets (optional)")
	flag.Parse()

	results, err := load(*in)
	if err != nil {
		log.Fatal(err)
	}
	if len(results) == 0 {
		log.Fatalf("no results in %s", *in)
	}
	fixtures := groupByFixture(results)
	if err := os.MkdirAll(*charts, 0o755); err != nil {
		log.Fatal(err)
	}
	var chartFiles []string
	for _, f := range fixtures {
		name := "e2e-" + f.name + ".png"
		if err := chart(f, filepath.Join(*charts, name)); err != nil {
			log.Fatalf("chart for %s: %v", f.name, err)
		}
		chartFiles = append(chartFiles, name)
	}
	notes := ""
	if *notesFile != "" {
		b, err := os.ReadFile(*notesFile)
		if err != nil && !os.IsNotExist(err) {
			log.Fatal(err)
		}
		notes = string(b)
	}
	section := render(fixtures, chartFiles, *chartLink, notes)
	if *benchmarks == "" {
		fmt.Println(section)
		return
	}
	if err := splice(*benchmarks, section); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("updated %s and %d chart(s) in %s\n", *benchmarks, len(chartFiles), *charts)
}

func load(dir string) ([]*Result, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []*Result
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		r := &Result{}
		if err := json.Unmarshal(b, r); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if r.FixtureName == "" || r.Mode == "" {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

type fixture struct {
	name string
	runs []*Result // by modeOrder
}

func (f fixture) mode(m string) *Result {
	for _, r := range f.runs {
		if r.Mode == m {
			return r
		}
	}
	return nil
}

func groupByFixture(results []*Result) []fixture {
	byName := map[string]*fixture{}
	var order []string
	for _, r := range results {
		f, ok := byName[r.FixtureName]
		if !ok {
			f = &fixture{name: r.FixtureName}
			byName[r.FixtureName] = f
			order = append(order, r.FixtureName)
		}
		f.runs = append(f.runs, r)
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := byName[order[i]].runs[0].Fixture, byName[order[j]].runs[0].Fixture
		if a.Nodes*a.PVsPerNode != b.Nodes*b.PVsPerNode {
			return a.Nodes*a.PVsPerNode < b.Nodes*b.PVsPerNode
		}
		if a.ClaimsPerPod != b.ClaimsPerPod {
			return a.ClaimsPerPod < b.ClaimsPerPod
		}
		return a.Pods < b.Pods
	})
	var out []fixture
	for _, n := range order {
		f := byName[n]
		sort.Slice(f.runs, func(i, j int) bool { return modeOrder[f.runs[i].Mode] < modeOrder[f.runs[j].Mode] })
		out = append(out, *f)
	}
	return out
}

var modeColor = map[string]color.Color{
	"berth":              color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"in-tree":            color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	"limit":              color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff},
	"berth-pvcontroller": color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
}

// chart draws pods done over time (log time axis: the in-tree runs take
// minutes, Berth's seconds) for every run of the fixture.
func chart(f fixture, path string) error {
	r0 := f.runs[0]
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%d nodes × %d PVs, %d pods × %d claim(s): pods bound with claims Bound",
		r0.Fixture.Nodes, r0.Fixture.PVsPerNode, r0.Fixture.Pods, r0.Fixture.ClaimsPerPod)
	p.X.Label.Text = "seconds since the first pod creation (log scale)"
	p.Y.Label.Text = "pods done"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	const t0 = 0.1
	xmax := 1.0
	for _, r := range f.runs {
		pts := plotter.XYs{{X: t0, Y: 0}}
		for i, t := range r.Timeline {
			pts = append(pts, plotter.XY{X: math.Max(t, t0), Y: float64(i + 1)})
		}
		end := r.DurationSeconds
		if r.TimedOut {
			end = r.TimeoutSeconds
		}
		pts = append(pts, plotter.XY{X: math.Max(end, t0), Y: float64(len(r.Timeline))})
		xmax = math.Max(xmax, end)
		line, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		line.StepStyle = plotter.PostStep
		line.Color = modeColor[r.Mode]
		line.Width = vg.Points(2)
		if r.Mode == "limit" {
			line.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		}
		label := fmt.Sprintf("%s: %d/%d, %.1f pods/s", r.Mode, r.PodsDone, r.Pods, r.PodsPerSecond)
		if r.TimedOut {
			label += fmt.Sprintf(" (stopped at %.0fs)", r.TimeoutSeconds)
		}
		p.Add(line)
		p.Legend.Add(label, line)
	}
	p.X.Min, p.X.Max = t0, xmax*1.1
	p.Y.Min, p.Y.Max = 0, float64(r0.Pods)*1.05
	p.Legend.ThumbnailWidth = vg.Points(20)
	p.Legend.TextStyle.Font.Size = vg.Points(10)
	p.Title.TextStyle.Font.Size = vg.Points(11)
	p.Title.Padding = vg.Points(6)
	p.Legend.YOffs = -vg.Points(4)
	p.Legend.XOffs = vg.Points(4)
	return p.Save(9*vg.Inch, 5*vg.Inch, path)
}

func hasMode(fixtures []fixture, mode string) bool {
	for _, f := range fixtures {
		if f.mode(mode) != nil {
			return true
		}
	}
	return false
}

func render(fixtures []fixture, charts []string, chartLink, notes string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	first := fixtures[0].runs[0]
	w("%s\n", beginMarker)
	w("## End to end: Berth vs the in-tree scheduler vs a pre-bound limit\n\n")
	w("`make bench-e2e` (package `test/perf`, charts and this section by `hack/perfchart`). ")
	w("Every run starts a fresh in-process control plane (embedded etcd, real kube-apiserver, the real PV controller with kube-controller-manager's 15s resync), ")
	w("creates N nodes with K Available local PVs each (10–500 GiB) and M pods with C WaitForFirstConsumer claims each (9–280 GiB, each just under a PV size), ")
	w("creates the pods in bulk (32 workers, client QPS/burst 5000) and measures from watch events until every pod is bound and every claim Bound. ")
	w("The scheduler's clientConnection.qps/burst is 5000/5000 in every run.\n\n")
	w("- **berth**: `manifests/config/scheduler-config.yaml` (LocalVolumeBinding + StorageScore weight 10).\n")
	w("- **in-tree**: the default profile with VolumeBinding `shape: [{utilization: 0, score: 0}, {utilization: 100, score: 10}]` (tightest fit); StorageCapacityScoring is beta and on by default in 1.37 (on in these runs: %v).\n", first.StorageCapacityScoring)
	if hasMode(fixtures, "berth-pvcontroller") {
		w("- **berth-pvcontroller**: Berth's profile with LocalVolumeBinding `bindMode: PVController`: PreBind writes the claimRef and waits for the PV controller to complete the bind, as the in-tree plugin does (and as Berth did before bindMode Direct).\n")
	}
	w("- **limit**: Berth's profile on the same pods whose claims the PV controller had already bound (pre-bound PVs/claims) before the pods were created: what the API server, the scheduler framework and the binder allow without any volume work.\n\n")
	w("Latency is pod creation → pod bound with all its claims Bound. Waste is Σ(PV capacity − request) over the claims bound in the run (per claim in brackets, which compares runs that bound different numbers of claims). ")
	w("CPU: the scheduler's own CPU seconds during the window, from a CPU profile of the process in which every goroutine the scheduler starts carries the pprof label component=scheduler (the API server, etcd, PV controller and driver carry their own labels; Go's GC workers are unlabelled); process CPU is getrusage for the whole process. ")
	w("Heap is the whole process (API server and etcd included): peak during the window and, in brackets, the rise from just before the first pod.\n\n")
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, f := range fixtures {
		for _, r := range f.runs {
			var l float64
			if _, err := fmt.Sscan(r.Machine.LoadAvg, &l); err == nil {
				lo, hi = math.Min(lo, l), math.Max(hi, l)
			}
		}
	}
	load := "unknown"
	if lo <= hi {
		load = fmt.Sprintf("%.1f–%.1f", lo, hi)
	}
	w("Machine: %s, %d cores, %d GiB, Linux %s, %s. One-minute load average when the runs started: %s on 2 cores.\n\n",
		first.Machine.CPU, first.Machine.Cores, first.Machine.MemoryGiB, first.Machine.Kernel, first.Machine.Go, load)

	w("| fixture (nodes×PVs, pods×claims) | scheduler | pods done | time (s) | pods/s | p50 (s) | p90 (s) | p99 (s) | waste GiB (per claim) | scheduler CPU s (ms/pod) | process CPU s (ms/pod) | API writes per pod | heap peak MiB (rise) |\n")
	w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, f := range fixtures {
		for _, r := range f.runs {
			fx := fmt.Sprintf("%d×%d, %d×%d", r.Fixture.Nodes, r.Fixture.PVsPerNode, r.Fixture.Pods, r.Fixture.ClaimsPerPod)
			done := fmt.Sprintf("%d/%d", r.PodsDone, r.Pods)
			if r.TimedOut {
				done += fmt.Sprintf(" (limit %.0fs)", r.TimeoutSeconds)
			}
			if r.Error != "" {
				done += " error: " + r.Error
			}
			perClaim := 0.0
			if r.ClaimsBound > 0 {
				perClaim = r.WastedGiB / float64(r.ClaimsBound)
			}
			msPerPod, procPerPod, writesPerPod := 0.0, 0.0, 0.0
			if r.PodsDone > 0 {
				msPerPod = 1000 * r.SchedulerCPUSeconds / float64(r.PodsDone)
				procPerPod = 1000 * r.ProcessCPUSeconds / float64(r.PodsDone)
				writesPerPod = r.APIWritesTotal / float64(r.PodsDone)
			}
			w("| %s | %s | %s | %.1f | %.1f | %.2f | %.2f | %.2f | %.0f (%.1f) | %.1f (%.1f) | %.1f (%.1f) | %.1f | %.0f (+%.0f) |\n",
				fx, r.Mode, done, r.DurationSeconds, r.PodsPerSecond, r.Latency.P50, r.Latency.P90, r.Latency.P99,
				r.WastedGiB, perClaim, r.SchedulerCPUSeconds, msPerPod, r.ProcessCPUSeconds, procPerPod, writesPerPod,
				float64(r.HeapPeakBytes)/(1<<20), (float64(r.HeapPeakBytes)-float64(r.HeapBaselineBytes))/(1<<20))
		}
	}
	w("\nWhere the latency goes, per claim: pod creation → the scheduler's claimRef write on the PV, and that write → claim Bound (by Berth's PreBind with bindMode Direct, by the PV controller for in-tree; seen in watches; not applicable to the limit run):\n\n")
	w("| fixture | scheduler | creation → claimRef p50 (s) | claimRef → Bound p50 (s) | claimRef → Bound p99 (s) |\n|---|---|---:|---:|---:|\n")
	for _, f := range fixtures {
		for _, r := range f.runs {
			if r.Mode == "limit" || (r.ToClaimRef.P50 == 0 && r.ClaimRefToBound.P50 == 0) {
				continue
			}
			w("| %s | %s | %.2f | %.2f | %.2f |\n", f.name, r.Mode, r.ToClaimRef.P50, r.ClaimRefToBound.P50, r.ClaimRefToBound.P99)
		}
	}
	w("\n")
	for _, f := range fixtures {
		if l := f.mode("limit"); l != nil && l.PrebindClaimsPerSecond > 0 {
			w("- %s: the PV controller bound the limit run's %d pre-bound pairs at %.0f claims/s.\n", f.name, l.Fixture.Pods*l.Fixture.ClaimsPerPod, l.PrebindClaimsPerSecond)
		}
	}
	w("\n### Targets\n\n")
	w("| target | fixture | result | met |\n|---|---|---|---|\n")
	yes := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "**no**"
	}
	for _, f := range fixtures {
		br := f.mode("berth")
		if br == nil {
			continue
		}
		if br.Fixture.Nodes <= 5000 {
			w("| Berth ≥ 100 pods/s | %s | %.1f pods/s | %s |\n", f.name, br.PodsPerSecond, yes(br.PodsPerSecond >= 100 && !br.TimedOut))
		}
		if it := f.mode("in-tree"); it != nil && br.Fixture.Nodes == 500 && it.PodsDone > 0 && it.DurationSeconds > 0 {
			itRate := float64(it.PodsDone) / it.DurationSeconds
			w("| Berth ≥ 300× in-tree throughput | %s | %.0f× (%.1f vs %.3f pods/s) | %s |\n", f.name, br.PodsPerSecond/itRate, br.PodsPerSecond, itRate, yes(br.PodsPerSecond >= 300*itRate))
		}
		if br.Fixture.Nodes == 500 && br.Fixture.PVsPerNode == 10 && br.Fixture.Pods == 1000 && br.Fixture.ClaimsPerPod == 1 {
			w("| Berth p99 pod creation → claims Bound < 1 s | %s | %.2f s | %s |\n", f.name, br.Latency.P99, yes(br.Latency.P99 < 1 && !br.TimedOut))
		}
		if l := f.mode("limit"); l != nil && l.PodsPerSecond > 0 {
			ratio := br.PodsPerSecond / l.PodsPerSecond
			w("| Berth ≥ 70%% of the limit run | %s | %.0f%% (%.1f vs %.1f pods/s) | %s |\n", f.name, 100*ratio, br.PodsPerSecond, l.PodsPerSecond, yes(ratio >= 0.7))
		}
		if it := f.mode("in-tree"); it != nil && it.ClaimsBound > 0 && br.ClaimsBound > 0 {
			if it.ClaimsBound < br.ClaimsBound && len(it.Bindings) > 0 && len(br.Bindings) > 0 {
				// Same claims: Berth's waste on the claims the in-tree run bound.
				var bw, iw int64
				n := 0
				for claim, ib := range it.Bindings {
					bb, ok := br.Bindings[claim]
					if !ok {
						continue
					}
					n++
					bw += bb.Capacity - bb.Request
					iw += ib.Capacity - ib.Request
				}
				w("| Berth waste ≤ in-tree | %s | on the %d claims the in-tree run bound before its limit: %.0f vs %.0f GiB | %s |\n",
					f.name, n, float64(bw)/gib, float64(iw)/gib, yes(bw <= iw))
				continue
			}
			bp, ip := br.WastedGiB/float64(br.ClaimsBound), it.WastedGiB/float64(it.ClaimsBound)
			note := ""
			if it.ClaimsBound != br.ClaimsBound {
				note = fmt.Sprintf(" (in-tree bound %d claims, Berth %d: compared per claim)", it.ClaimsBound, br.ClaimsBound)
			}
			w("| Berth waste ≤ in-tree | %s | %.0f vs %.0f GiB (%.1f vs %.1f GiB per claim)%s | %s |\n", f.name, br.WastedGiB, it.WastedGiB, bp, ip, note, yes(bp <= ip+1e-9))
		}
	}
	w("\n")
	if notes != "" {
		w("%s\n\n", strings.TrimSpace(notes))
	}
	for i, f := range fixtures {
		w("![%s](%s)\n\n", f.name, filepath.ToSlash(filepath.Join(chartLink, charts[i])))
	}
	w("%s\n", endMarker)
	return b.String()
}

// splice replaces the end-to-end section of path (between the markers), or
// appends it, re-reading the file right before writing so that other
// sections written meanwhile are kept.
func splice(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(old)
	if s == "" {
		s = "# Benchmarks\n\n"
	}
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i >= 0 && j > i {
		rest := strings.TrimPrefix(s[j+len(endMarker):], "\n")
		s = s[:i] + section + rest
	} else {
		if !strings.HasSuffix(s, "\n\n") {
			s = strings.TrimRight(s, "\n") + "\n\n"
		}
		s += section
	}
	return os.WriteFile(path, []byte(s), 0o644)
}
