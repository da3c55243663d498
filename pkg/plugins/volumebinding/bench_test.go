package volumebinding

// Benchmarks for `make bench`: Berth's Filter against the in-tree
// VolumeBinding plugin's, both built on the same informers over the same
// fake cluster: N nodes with 10 Available local PVs each (class "local",
// WaitForFirstConsumer, no provisioner, NodeAffinity kubernetes.io/hostname
// In [the node's hostname]) and a pod with one unbound 10Gi claim.
//
// Results and interpretation: BENCHMARKS.md at the repository root.

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	schedconfig "k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins/feature"
	intree "k8s.io/kubernetes/pkg/scheduler/framework/plugins/volumebinding"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"

	"github.com/berth-dev/berth/pkg/apis/config"
	"github.com/berth-dev/berth/pkg/plugins/volumebinding/pvindex"
)

const benchPVsPerNode = 10

// benchSizes are the PV capacities, in Gi, assigned round-robin with a
// per-node offset so nodes differ.
var benchSizes = []int64{10, 20, 30, 50, 75, 100, 120, 150, 180, 200}

// filterPlugin is what the benchmarks call on either plugin.
type filterPlugin interface {
	fwk.PreFilterPlugin
	fwk.FilterPlugin
}

type benchCluster struct {
	nodes  []fwk.NodeInfo
	pod    *v1.Pod
	berth  *LocalVolumeBinding
	intree filterPlugin
	ctx    context.Context
}

var (
	benchMu       sync.Mutex
	benchClusters = map[int]*benchCluster{}
)

func benchNode(i int) *v1.Node {
	return &v1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:            fmt.Sprintf("node-%05d", i),
		ResourceVersion: "1",
		// The hostname label differs from the node name, as on many clouds.
		Labels: map[string]string{v1.LabelHostname: fmt.Sprintf("host-%05d", i), zoneLabel: fmt.Sprintf("zone-%d", i%3)},
	}}
}

func benchPV(node, i int) *v1.PersistentVolume {
	size := benchSizes[(node+i)%len(benchSizes)]
	pv := makePV(fmt.Sprintf("local-pv-%05d-%02d", node, i), "local", fmt.Sprintf("%dGi", size), onHost(fmt.Sprintf("host-%05d", node)))
	pv.ResourceVersion = "1" // the in-tree assume cache ignores objects without one
	return pv
}

// cluster returns the shared fixture with n nodes, building it on first use
// (minutes for 5000 nodes, mostly the in-tree assume cache and informer
// start-up; not timed).
func cluster(b *testing.B, n int) *benchCluster {
	b.Helper()
	benchMu.Lock()
	defer benchMu.Unlock()
	if c, ok := benchClusters[n]; ok {
		return c
	}
	start := time.Now()
	objs := []k8sruntime.Object{localClass("local"), makePVC("data-0", "local", "10Gi")}
	nodes := make([]*v1.Node, n)
	for i := 0; i < n; i++ {
		nodes[i] = benchNode(i)
		objs = append(objs, nodes[i])
		for j := 0; j < benchPVsPerNode; j++ {
			objs = append(objs, benchPV(i, j))
		}
	}
	for _, o := range objs[:2] {
		o.(metav1.Object).SetResourceVersion("1")
	}
	// Quiet the plugins' per-pod logging; the fixture lives for the whole
	// benchmark run (its informers are never stopped).
	ctx := klog.NewContext(context.Background(), klog.LoggerWithName(klog.Background(), "bench").V(10))
	client := fake.NewSimpleClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	fh, err := frameworkruntime.NewFramework(ctx, nil, nil,
		frameworkruntime.WithClientSet(client), frameworkruntime.WithInformerFactory(factory))
	if err != nil {
		b.Fatal(err)
	}
	bp, err := New(ctx, &config.LocalVolumeBindingArgs{BindTimeoutSeconds: config.DefaultBindTimeoutSeconds, BindMode: config.DefaultBindMode}, fh)
	if err != nil {
		b.Fatal(err)
	}
	ip, err := intree.New(ctx, &schedconfig.VolumeBindingArgs{BindTimeoutSeconds: 600}, fh, feature.Features{})
	if err != nil {
		b.Fatal(err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	c := &benchCluster{pod: makePod("web", "data-0"), berth: bp.(*LocalVolumeBinding), intree: ip.(filterPlugin), ctx: ctx}
	for _, node := range nodes {
		ni := framework.NewNodeInfo()
		ni.SetNode(node)
		c.nodes = append(c.nodes, ni)
	}
	// Wait until both plugins' event handlers have seen every PV.
	want := n * benchPVsPerNode
	deadline := time.Now().Add(10 * time.Minute)
	for !c.berth.hasSynced() || c.berth.index.Stats().Volumes != want || intreeVolumes(c) != want {
		if time.Now().After(deadline) {
			b.Fatalf("plugins did not see all %d PVs: berth %d, in-tree %d", want, c.berth.index.Stats().Volumes, intreeVolumes(c))
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Logf("fixture: %d nodes × %d PVs built in %s", n, benchPVsPerNode, time.Since(start).Round(time.Millisecond))
	benchClusters[n] = c
	return c
}

// intreeVolumes returns how many PVs of class "local" the in-tree plugin's
// PreFilter hands to its Filter: the length of its (unexported) state's
// podVolumeClaims.unboundVolumesDelayBinding["local"], read by reflection.
func intreeVolumes(c *benchCluster) int {
	cs := framework.NewCycleState()
	if _, st := c.intree.PreFilter(c.ctx, cs, c.pod, nil); !st.IsSuccess() {
		return -1
	}
	sd, err := cs.Read(intree.Name)
	if err != nil {
		return -1
	}
	m := reflect.ValueOf(sd).Elem().FieldByName("podVolumeClaims").Elem().FieldByName("unboundVolumesDelayBinding")
	return m.MapIndex(reflect.ValueOf("local")).Len()
}

// cpuMeter reports the process CPU time of a benchmark per operation
// ("cpu-ns/op") or per node ("cpu-ns/node"); it includes the GC's work on
// other threads but not other processes' load, which inflates wall time.
type cpuMeter struct{ start time.Duration }

func startCPU() cpuMeter { return cpuMeter{start: processCPU()} }

func (m cpuMeter) report(b *testing.B, perOp int, unit string) {
	end := processCPU()
	if m.start < 0 || end < 0 {
		return
	}
	b.ReportMetric(float64(end-m.start)/float64(b.N*perOp), unit)
}

func (c *benchCluster) plugin(name string) filterPlugin {
	if name == "berth" {
		return c.berth
	}
	return c.intree
}

// BenchmarkFilter measures one Filter call for one node after one PreFilter,
// cycling over the nodes. Berth's cost should not depend on the cluster's
// PV count; the in-tree plugin scans every PV of the class per node.
//
// berth/nodes=5000/pvs=50000/cycle=500 filters only the first 500 nodes of
// the large cluster: same per-node work as nodes=500, but with 50,000 PVs
// indexed, separating the PV count from CPU cache effects of touching
// 5000 nodes' objects.
func BenchmarkFilter(b *testing.B) {
	cases := []struct {
		plugin       string
		nodes, cycle int
	}{
		{"berth", 5000, 5000},
		{"berth", 500, 500},
		{"berth", 5000, 500},
		{"intree", 5000, 5000},
		{"intree", 500, 500},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("%s/nodes=%d/pvs=%d", tc.plugin, tc.nodes, tc.nodes*benchPVsPerNode)
		if tc.cycle != tc.nodes {
			name += fmt.Sprintf("/cycle=%d", tc.cycle)
		}
		b.Run(name, func(b *testing.B) {
			c := cluster(b, tc.nodes)
			p := c.plugin(tc.plugin)
			nodes := c.nodes[:tc.cycle]
			cs := framework.NewCycleState()
			if _, st := p.PreFilter(c.ctx, cs, c.pod, nil); !st.IsSuccess() {
				b.Fatalf("PreFilter: %v", st)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu := startCPU()
			for i := 0; i < b.N; i++ {
				if st := p.Filter(c.ctx, cs, c.pod, nodes[i%len(nodes)]); !st.IsSuccess() {
					b.Fatalf("Filter: %v", st)
				}
			}
			b.StopTimer()
			cpu.report(b, 1, "cpu-ns/op")
		})
	}
}

// BenchmarkPreFilterFilterAllNodes measures a pod's PreFilter plus Filter
// over every node, serially (the scheduler spreads Filter over 16
// goroutines). The in-tree plugin takes minutes for 5000 nodes, so on that
// fixture it runs on the first 50 nodes only (nodes=5000/filtered=50).
func BenchmarkPreFilterFilterAllNodes(b *testing.B) {
	cases := []struct {
		plugin          string
		nodes, filtered int
	}{
		{"berth", 5000, 5000},
		{"berth", 500, 500},
		{"berth", 5000, 50},
		{"intree", 500, 500},
		{"intree", 5000, 50},
	}
	for _, tc := range cases {
		b.Run(fmt.Sprintf("%s/nodes=%d/filtered=%d", tc.plugin, tc.nodes, tc.filtered), func(b *testing.B) {
			c := cluster(b, tc.nodes)
			p := c.plugin(tc.plugin)
			nodes := c.nodes[:tc.filtered]
			b.ReportAllocs()
			b.ResetTimer()
			cpu := startCPU()
			for i := 0; i < b.N; i++ {
				cs := framework.NewCycleState()
				if _, st := p.PreFilter(c.ctx, cs, c.pod, nil); !st.IsSuccess() {
					b.Fatalf("PreFilter: %v", st)
				}
				for _, ni := range nodes {
					if st := p.Filter(c.ctx, cs, c.pod, ni); !st.IsSuccess() {
						b.Fatalf("Filter: %v", st)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(nodes)), "ns/node")
			cpu.report(b, len(nodes), "cpu-ns/node")
		})
	}
}

// BenchmarkIndexMemory fills a pvindex.Index with 50,000 PVs (5000 hosts ×
// 10) and reports the heap the index adds per PV, after GC. The PV objects
// are allocated beforehand and not counted: the informer holds them anyway
// and the index only points to them. ns/op is the time to index all 50,000.
func BenchmarkIndexMemory(b *testing.B) {
	const hosts = 5000
	pvs := make([]*v1.PersistentVolume, 0, hosts*benchPVsPerNode)
	for h := 0; h < hosts; h++ {
		for i := 0; i < benchPVsPerNode; i++ {
			pvs = append(pvs, benchPV(h, i))
		}
	}
	var total uint64
	var ms runtime.MemStats
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		b.StartTimer()
		x := pvindex.New()
		for _, pv := range pvs {
			x.SetPV(pv)
		}
		b.StopTimer()
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		if got := x.Stats().Volumes; got != len(pvs) {
			b.Fatalf("index holds %d volumes, want %d", got, len(pvs))
		}
		total += ms.HeapAlloc - before
		runtime.KeepAlive(x)
		b.StartTimer()
	}
	b.ReportMetric(float64(total)/float64(b.N)/float64(len(pvs)), "bytes/pv")
	runtime.KeepAlive(pvs)
}

// TestBenchFixture checks on a small cluster that the benchmark's pod fits
// every node with both plugins, and that Berth picks the node's 10Gi PV.
func TestBenchFixture(t *testing.T) {
	objs := []k8sruntime.Object{localClass("local"), makePVC("data-0", "local", "10Gi")}
	var names []string
	for i := 0; i < 5; i++ {
		objs = append(objs, benchNode(i))
		names = append(names, benchNode(i).Name)
		for j := 0; j < benchPVsPerNode; j++ {
			objs = append(objs, benchPV(i, j))
		}
	}
	e := newEnv(t, nil, objs...)
	ip, err := intree.New(e.ctx, &schedconfig.VolumeBindingArgs{BindTimeoutSeconds: 600}, e.handle, feature.Features{})
	if err != nil {
		t.Fatal(err)
	}
	c := &benchCluster{pod: makePod("web", "data-0"), berth: e.pl, intree: ip.(filterPlugin), ctx: e.ctx}
	e.waitFor(func() bool { return intreeVolumes(c) == len(names)*benchPVsPerNode }, "in-tree plugin did not see every PV")

	r := e.cycle(c.pod, names...)
	ics := framework.NewCycleState()
	if _, st := c.intree.PreFilter(e.ctx, ics, c.pod, nil); !st.IsSuccess() {
		t.Fatalf("in-tree PreFilter: %v", st)
	}
	for _, n := range names {
		if !r.filterStatus[n].IsSuccess() {
			t.Fatalf("%s: %v", n, r.filterStatus[n])
		}
		plan := staticPlan(t, r.state, n)
		v, _ := e.pl.index.Get(plan["data-0"])
		if v.Capacity != 10*gi {
			t.Errorf("%s: chose %s of %d bytes, want the 10Gi PV", n, v.Name(), v.Capacity)
		}
		if st := c.intree.Filter(e.ctx, ics, c.pod, e.nodeInfo(n)); !st.IsSuccess() {
			t.Errorf("in-tree Filter on %s: %v", n, st)
		}
	}
}
