// Command berth-simkubelet stands in for the kubelets of the local cluster's
// nodes (make local-up, make demo, make e2e): it creates N nodes, keeps their
// Leases and Ready conditions fresh, moves pods bound to them to Running and
// finishes their deletion, as test/integration/framework/simkubelet does
// in-process for the integration tests. It runs that same package, so both
// suites exercise one simulation.
//
// Why not real kubelets: a kubelet needs a container runtime, root and
// cgroups (kind needs Docker, which this project cannot assume). Why not
// kwok: it is built against other k8s.io library versions than the ones
// this module pins, so it cannot be built from this module (see the
// simkubelet package); downloading its binaries is not an option.
//
// A node is "killed" by stopping its heartbeats, over a small HTTP API on
// --listen (also used by `berth-localcluster node stop|resume`):
//
//	GET  /nodes               JSON list of {"name", "live"}
//	POST /nodes/<name>/stop   the node goes silent (no Lease renewal, no status)
//	POST /nodes/<name>/resume heartbeats resume
//	GET  /healthz
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/test/integration/framework/simkubelet"
)

func main() {
	var (
		kubeconfig = flag.String("kubeconfig", "", "kubeconfig of the cluster (required)")
		nodes      = flag.Int("nodes", 5, "number of nodes to create and run")
		prefix     = flag.String("node-prefix", "node-", "node names are <prefix>1 ... <prefix>N")
		listen     = flag.String("listen", "127.0.0.1:0", "address of the control API")
		addrFile   = flag.String("addr-file", "", "write the control API's URL to this file once serving")
		cpu        = flag.String("cpu", "8", "CPU capacity of each node")
		memory     = flag.String("memory", "32Gi", "memory capacity of each node")
	)
	klog.InitFlags(nil)
	flag.Parse()
	if err := run(*kubeconfig, *nodes, *prefix, *listen, *addrFile, *cpu, *memory); err != nil {
		fmt.Fprintln(os.Stderr, "berth-simkubelet:", err)
		os.Exit(1)
	}
}

func run(kubeconfig string, n int, prefix, listen, addrFile, cpu, memory string) error {
	if kubeconfig == "" {
		return fmt.Errorf("--kubeconfig is required")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	config.QPS, config.Burst = 50, 100
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return err
	}

	kubelet := simkubelet.New(client, simkubelet.Options{})
	if err := kubelet.Start(ctx); err != nil {
		return err
	}
	defer kubelet.Shutdown()
	var names []string
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("%s%d", prefix, i)
		if err := createNode(ctx, client, name, cpu, memory); err != nil {
			return err
		}
		if err := kubelet.Register(ctx, name); err != nil {
			return err
		}
		names = append(names, name)
	}
	klog.InfoS("Simulating kubelets", "nodes", names)

	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler(kubelet), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	url := "http://" + l.Addr().String()
	if addrFile != "" {
		if err := os.WriteFile(addrFile, []byte(url+"\n"), 0o644); err != nil {
			return err
		}
	}
	klog.InfoS("Serving the control API", "url", url)
	<-ctx.Done()
	klog.InfoS("Shutting down")
	shutdownCtx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	return srv.Shutdown(shutdownCtx)
}

// createNode creates a node the way a kubelet registers itself (labels,
// capacity); the simulated kubelet then posts its conditions. An existing
// node is reused.
func createNode(ctx context.Context, client kubernetes.Interface, name, cpu, memory string) error {
	capacity := v1.ResourceList{
		v1.ResourceCPU:              resource.MustParse(cpu),
		v1.ResourceMemory:           resource.MustParse(memory),
		v1.ResourcePods:             resource.MustParse("110"),
		v1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
	node := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			v1.LabelHostname: name, v1.LabelOSStable: "linux", v1.LabelArchStable: "amd64",
			"berth.dev/simulated": "true",
		}},
		Status: v1.NodeStatus{Capacity: capacity, Allocatable: capacity.DeepCopy(), Phase: v1.NodeRunning},
	}
	_, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

type nodeState struct {
	Name string `json:"name"`
	Live bool   `json:"live"`
}

func handler(k *simkubelet.Kubelet) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /nodes", func(w http.ResponseWriter, _ *http.Request) {
		names := k.Nodes()
		slices.Sort(names)
		out := make([]nodeState, 0, len(names))
		for _, name := range names {
			out = append(out, nodeState{Name: name, Live: k.IsLive(name)})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("POST /nodes/{name}/{action}", func(w http.ResponseWriter, r *http.Request) {
		name, action := r.PathValue("name"), r.PathValue("action")
		if !slices.Contains(k.Nodes(), name) {
			http.Error(w, fmt.Sprintf("no simulated node %q (have %s)", name, strings.Join(k.Nodes(), ", ")), http.StatusNotFound)
			return
		}
		switch action {
		case "stop":
			k.Stop(name)
		case "resume":
			k.Resume(name)
		default:
			http.Error(w, "action must be stop or resume", http.StatusNotFound)
			return
		}
		klog.InfoS("Node "+action, "node", name)
		fmt.Fprintf(w, "%s: %s\n", name, action)
	})
	return mux
}
