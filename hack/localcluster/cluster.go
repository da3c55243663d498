// Package localcluster runs a small Kubernetes cluster on 127.0.0.1 out of
// real components, each its own process: etcd, kube-apiserver (RBAC on),
// kube-controller-manager, simulated kubelets (berth-simkubelet), and
// Berth's berth-scheduler and berth-nodefailover authenticated as their
// ServiceAccounts and bound only to the roles in manifests/.
//
// Everything lives in one state directory (default .local/): PKI,
// kubeconfigs, etcd data, logs and state.json, which records the processes
// so that Down (possibly from another process) stops exactly them.
//
// The binaries come from bin/ (make local-build): kube-apiserver and
// kube-controller-manager built from the pinned k8s.io/kubernetes module,
// etcd from go.etcd.io/etcd/server/v3, and this repository's commands.
package localcluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/berth-dev/berth/hack/manifests"
)

// Options configure a Cluster. Zero values take the defaults.
type Options struct {
	// Root is the repository root (manifests/, bin/). Default ".".
	Root string
	// Dir is the state directory. Default <Root>/.local.
	Dir string
	// BinDir holds the binaries. Default <Root>/bin.
	BinDir string
	// Nodes is the number of simulated nodes (node-1 ... node-N). Default 5.
	Nodes int
	// NodeMonitorGracePeriod: how long a node may miss heartbeats before
	// the node lifecycle controller marks it NotReady (kcm flag; upstream
	// default 50s). Default 10s.
	NodeMonitorGracePeriod time.Duration
	// NodeDeadThreshold is berth-nodefailover's --node-dead-threshold
	// (production default 5m). Default 20s.
	NodeDeadThreshold time.Duration
	// Out receives progress lines. Default os.Stdout.
	Out io.Writer
}

func (o *Options) defaults() error {
	if o.Root == "" {
		o.Root = "."
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return err
	}
	o.Root = root
	if o.Dir == "" {
		o.Dir = filepath.Join(root, ".local")
	}
	if o.BinDir == "" {
		o.BinDir = filepath.Join(root, "bin")
	}
	if o.Nodes <= 0 {
		o.Nodes = 5
	}
	if o.NodeMonitorGracePeriod <= 0 {
		o.NodeMonitorGracePeriod = 10 * time.Second
	}
	if o.NodeDeadThreshold <= 0 {
		o.NodeDeadThreshold = 20 * time.Second
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Dir, err = filepath.Abs(o.Dir); err != nil {
		return err
	}
	o.BinDir, err = filepath.Abs(o.BinDir)
	return err
}

// Cluster is a running (or stopped) local cluster.
type Cluster struct {
	opts  Options
	procs *procs
	pki   *pki
	// admin is the admin client config (system:masters).
	admin   *rest.Config
	etcdURL string
}

// Namespace and ServiceAccounts of Berth's components (manifests/).
const (
	BerthNamespace          = "berth-system"
	SchedulerAccount        = "berth-scheduler"
	NodeFailoverAccount     = "berth-nodefailover"
	SchedulerLease          = "berth-scheduler"
	NodeFailoverLease       = "berth-nodefailover"
	LeaseNamespace          = "kube-system"
	serviceClusterIPRange   = "10.0.0.0/24"
	serviceAccountIssuer    = "https://kubernetes.default.svc.cluster.local"
	componentTokenSeconds   = 7 * 24 * 3600
	componentStartupTimeout = 2 * time.Minute
)

// Up starts a cluster in opts.Dir, which must not hold a running one. On
// failure everything started so far is stopped again (the logs stay).
func Up(ctx context.Context, opts Options) (_ *Cluster, err error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if st, err := ReadState(opts.Dir); err == nil {
		for _, p := range st.Procs {
			if alive(p) {
				return nil, fmt.Errorf("a local cluster is already running in %s (%s, pid %d): run `make local-down` first", opts.Dir, p.Name, p.PID)
			}
		}
	}
	if err := cleanDir(opts.Dir); err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, procs: &procs{dir: opts.Dir}}
	defer func() {
		if err != nil {
			if downErr := c.Down(); downErr != nil {
				err = errors.Join(err, downErr)
			}
		}
	}()
	if err := c.procs.save(); err != nil {
		return nil, err
	}
	start := time.Now()
	steps := []struct {
		what string
		f    func(context.Context) error
	}{
		{"certificates and keys", c.makePKI},
		{"etcd", c.startEtcd},
		{"kube-apiserver (RBAC)", c.startAPIServer},
		{"Berth's namespace, ServiceAccounts and RBAC from manifests/", c.applyRBAC},
		{"kube-controller-manager", c.startControllerManager},
		{fmt.Sprintf("%d simulated nodes", opts.Nodes), c.startNodes},
		{"berth-scheduler (as ServiceAccount berth-system/berth-scheduler)", c.startScheduler},
		{"berth-nodefailover (as ServiceAccount berth-system/berth-nodefailover)", c.startNodeFailover},
	}
	for _, s := range steps {
		t := time.Now()
		if err := s.f(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", s.what, err)
		}
		c.logf("  ✓ %-72s %5.1fs", s.what, time.Since(t).Seconds())
	}
	c.logf("  local cluster up in %.0fs (state and logs in %s)", time.Since(start).Seconds(), c.rel(opts.Dir))
	return c, nil
}

// Attach returns the cluster recorded in opts.Dir (e.g. to stop a node or
// run checks from another process).
func Attach(opts Options) (*Cluster, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	st, err := ReadState(opts.Dir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, procs: &procs{dir: opts.Dir, st: *st}}
	if st.Kubeconfig != "" {
		if c.admin, err = clientcmd.BuildConfigFromFlags("", st.Kubeconfig); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Down stops every recorded process (newest first) and removes the state
// directory except the logs.
func (c *Cluster) Down() error {
	err := c.procs.stopAll(15 * time.Second)
	if err != nil {
		return err
	}
	return cleanDir(c.opts.Dir)
}

// Kubeconfig is the admin kubeconfig's path.
func (c *Cluster) Kubeconfig() string { return filepath.Join(c.opts.Dir, "kubeconfig") }

// AdminConfig is an admin client config (a copy).
func (c *Cluster) AdminConfig() *rest.Config { return rest.CopyConfig(c.admin) }

// Nodes are the simulated nodes' names.
func (c *Cluster) Nodes() []string { return append([]string(nil), c.procs.st.Nodes...) }

// LogDir holds one log file per process.
func (c *Cluster) LogDir() string { return filepath.Join(c.opts.Dir, "logs") }

// Procs are the running processes.
func (c *Cluster) Procs() []Proc { return append([]Proc(nil), c.procs.st.Procs...) }

// StopNode makes a simulated node go silent (no Lease renewals, no status
// updates), as if the machine died.
func (c *Cluster) StopNode(ctx context.Context, node string) error {
	return c.nodeAction(ctx, node, "stop")
}

// ResumeNode lets a stopped node heartbeat again.
func (c *Cluster) ResumeNode(ctx context.Context, node string) error {
	return c.nodeAction(ctx, node, "resume")
}

func (c *Cluster) nodeAction(ctx context.Context, node, action string) error {
	url := c.procs.st.SimkubeletURL
	if url == "" {
		return fmt.Errorf("no simulated kubelets recorded in %s", c.opts.Dir)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/nodes/"+node+"/"+action, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s node %s: %s", action, node, strings.TrimSpace(string(body)))
	}
	return nil
}

func (c *Cluster) logf(format string, args ...any) {
	fmt.Fprintf(c.opts.Out, format+"\n", args...)
}

func (c *Cluster) rel(path string) string {
	if r, err := filepath.Rel(c.opts.Root, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

func (c *Cluster) bin(name string) string { return filepath.Join(c.opts.BinDir, name) }

func (c *Cluster) path(parts ...string) string {
	return filepath.Join(append([]string{c.opts.Dir}, parts...)...)
}

// cleanDir empties dir except logs/, which is kept for post-mortems until
// the next Up truncates the files.
func cleanDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == "logs" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) makePKI(context.Context) error {
	// Fresh logs for a fresh cluster.
	if err := os.RemoveAll(c.LogDir()); err != nil {
		return err
	}
	p, err := newPKI(c.path("pki"))
	if err != nil {
		return err
	}
	c.pki = p
	localhost := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")}
	if err := p.serving("kube-apiserver", []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}, localhost); err != nil {
		return err
	}
	for _, cl := range []struct{ name, user, group string }{
		{"admin", "berth-local-admin", "system:masters"},
		// The bootstrap ClusterRole system:kube-controller-manager is
		// bound to this user name; with --use-service-account-credentials
		// each controller then runs as its own ServiceAccount.
		{"kube-controller-manager", "system:kube-controller-manager", ""},
		// The simulated kubelets create nodes and write node and pod
		// status for many nodes at once, which no node identity may.
		{"simkubelet", "berth-simkubelet", "system:masters"},
		// The API server's identity towards aggregated API servers.
		{"front-proxy-client", "front-proxy-client", ""},
	} {
		var groups []string
		if cl.group != "" {
			groups = []string{cl.group}
		}
		if err := p.client(cl.name, cl.user, groups...); err != nil {
			return err
		}
	}
	return nil
}

func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (c *Cluster) startEtcd(ctx context.Context) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	proc, err := c.procs.start("etcd", c.bin("etcd"),
		"--name=berth-local",
		"--data-dir="+c.path("etcd"),
		"--listen-client-urls="+client, "--advertise-client-urls="+client,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer,
		"--initial-cluster=berth-local="+peer,
		// The data only lives as long as the cluster.
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	c.etcdURL = client
	return c.waitHTTP(ctx, *proc, client+"/health", nil)
}

func (c *Cluster) startAPIServer(ctx context.Context) error {
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	p := c.pki
	proc, err := c.procs.start("kube-apiserver", c.bin("kube-apiserver"),
		"--etcd-servers="+c.etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(ports[0]),
		"--tls-cert-file="+p.path("kube-apiserver.crt"), "--tls-private-key-file="+p.path("kube-apiserver.key"),
		"--client-ca-file="+p.path("ca.crt"),
		// Front-proxy (aggregation) settings, published in the ConfigMap
		// kube-system/extension-apiserver-authentication that components
		// with delegated authentication (berth-scheduler) read.
		"--requestheader-client-ca-file="+p.path("ca.crt"),
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file="+p.path("front-proxy-client.crt"), "--proxy-client-key-file="+p.path("front-proxy-client.key"),
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer="+serviceAccountIssuer,
		"--service-account-key-file="+p.path("service-account.key"),
		"--service-account-signing-key-file="+p.path("service-account.key"),
		"--service-cluster-ip-range="+serviceClusterIPRange,
		// 127.0.0.1 cannot be an endpoint of the kubernetes Service.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
	)
	if err != nil {
		return err
	}
	server := fmt.Sprintf("https://127.0.0.1:%d", ports[0])
	kubeconfig := c.Kubeconfig()
	if err := writeKubeconfig(kubeconfig, server, p.path("ca.crt"), "admin", p.path("admin"), ""); err != nil {
		return err
	}
	if err := c.procs.update(func(s *State) { s.Server, s.Kubeconfig = server, kubeconfig }); err != nil {
		return err
	}
	if c.admin, err = clientcmd.BuildConfigFromFlags("", kubeconfig); err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(c.admin)
	if err != nil {
		return err
	}
	if err := c.waitFor(ctx, *proc, "/readyz", func(ctx context.Context) (bool, error) {
		status := 0
		client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).StatusCode(&status)
		return status == http.StatusOK, nil
	}); err != nil {
		return err
	}
	// The RBAC bootstrap roles are reconciled by a post-start hook that
	// /readyz waits for; the system namespaces come from a controller.
	return c.waitFor(ctx, *proc, "the kube-system namespace", func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Namespaces().Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
		return err == nil, nil
	})
}

// applyRBAC installs the namespace, ServiceAccounts and (Cluster)Roles and
// bindings of manifests/ exactly as rendered. The Deployments, Services
// and ConfigMap are left out: here the components run as local processes.
func (c *Cluster) applyRBAC(ctx context.Context) error {
	objs, err := manifests.Render(filepath.Join(c.opts.Root, "manifests"))
	if err != nil {
		return err
	}
	applier, err := manifests.NewApplier(c.admin)
	if err != nil {
		return err
	}
	kinds := map[string]bool{"Namespace": true, "ServiceAccount": true, "ClusterRole": true, "ClusterRoleBinding": true, "Role": true, "RoleBinding": true}
	for _, obj := range objs {
		if !kinds[obj.GetKind()] {
			continue
		}
		if _, err := applier.Apply(ctx, obj, false); err != nil {
			return err
		}
	}
	return nil
}

// serviceAccountKubeconfig writes a kubeconfig with a token from the
// TokenRequest API for berth-system/<account>: the component then has
// exactly the permissions the manifests grant that ServiceAccount (plus
// discovery, which every authenticated user has).
func (c *Cluster) serviceAccountKubeconfig(ctx context.Context, account string) (string, error) {
	client, err := kubernetes.NewForConfig(c.admin)
	if err != nil {
		return "", err
	}
	tr, err := client.CoreV1().ServiceAccounts(BerthNamespace).CreateToken(ctx, account, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](componentTokenSeconds)},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting a token for ServiceAccount %s/%s: %w", BerthNamespace, account, err)
	}
	path := c.path("kubeconfigs", account+".kubeconfig")
	return path, writeKubeconfig(path, c.admin.Host, c.pki.path("ca.crt"), "system:serviceaccount:"+BerthNamespace+":"+account, "", tr.Status.Token)
}

func (c *Cluster) startControllerManager(ctx context.Context) error {
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	kubeconfig := c.path("kubeconfigs", "kube-controller-manager.kubeconfig")
	if err := writeKubeconfig(kubeconfig, c.admin.Host, c.pki.path("ca.crt"), "system:kube-controller-manager", c.pki.path("kube-controller-manager"), ""); err != nil {
		return err
	}
	proc, err := c.procs.start("kube-controller-manager", c.bin("kube-controller-manager"),
		"--kubeconfig="+kubeconfig,
		"--authentication-kubeconfig="+kubeconfig, "--authorization-kubeconfig="+kubeconfig,
		"--use-service-account-credentials",
		"--service-account-private-key-file="+c.pki.path("service-account.key"),
		"--root-ca-file="+c.pki.path("ca.crt"),
		"--service-cluster-ip-range="+serviceClusterIPRange,
		// Every default controller: PV binder, PVC/PV protection,
		// StatefulSet, node lifecycle and taint eviction, garbage
		// collector, pod GC, namespace, ServiceAccount, ...
		"--controllers=*",
		"--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(ports[0]),
		"--cert-dir="+c.path("kube-controller-manager"),
		// A dead node is NotReady after seconds, not the default 50s.
		"--node-monitor-period=1s",
		"--node-monitor-grace-period="+c.opts.NodeMonitorGracePeriod.String(),
		"--pvclaimbinder-sync-period=5s",
		"--profiling=false",
	)
	if err != nil {
		return err
	}
	return c.waitHTTP(ctx, *proc, fmt.Sprintf("https://127.0.0.1:%d/healthz", ports[0]), insecureTLS())
}

func (c *Cluster) startNodes(ctx context.Context) error {
	kubeconfig := c.path("kubeconfigs", "simkubelet.kubeconfig")
	if err := writeKubeconfig(kubeconfig, c.admin.Host, c.pki.path("ca.crt"), "berth-simkubelet", c.pki.path("simkubelet"), ""); err != nil {
		return err
	}
	addrFile := c.path("simkubelet.url")
	proc, err := c.procs.start("berth-simkubelet", c.bin("berth-simkubelet"),
		"--kubeconfig="+kubeconfig, "--nodes="+strconv.Itoa(c.opts.Nodes), "--addr-file="+addrFile)
	if err != nil {
		return err
	}
	var url string
	if err := c.waitFor(ctx, *proc, "its control API", func(context.Context) (bool, error) {
		b, err := os.ReadFile(addrFile)
		url = strings.TrimSpace(string(b))
		return err == nil && url != "", nil
	}); err != nil {
		return err
	}
	var names []string
	for i := 1; i <= c.opts.Nodes; i++ {
		names = append(names, fmt.Sprintf("node-%d", i))
	}
	if err := c.procs.update(func(s *State) { s.SimkubeletURL, s.Nodes = url, names }); err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(c.admin)
	if err != nil {
		return err
	}
	// Ready, and the not-ready taint that every new node gets removed by
	// the node lifecycle controller: schedulable.
	return c.waitFor(ctx, *proc, "the nodes to be Ready and schedulable", func(ctx context.Context) (bool, error) {
		for _, name := range names {
			n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil || !nodeReady(n) {
				return false, nil
			}
			for _, t := range n.Spec.Taints {
				if t.Key == v1.TaintNodeNotReady {
					return false, nil
				}
			}
		}
		return true, nil
	})
}

func nodeReady(n *v1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

func (c *Cluster) startScheduler(ctx context.Context) error {
	kubeconfig, err := c.serviceAccountKubeconfig(ctx, SchedulerAccount)
	if err != nil {
		return err
	}
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	// The configuration file of manifests/ as shipped (leader election on
	// kube-system/berth-scheduler); berth-scheduler takes the kubeconfig
	// from --kubeconfig when the file names none. Delegated authentication
	// and authorization of the HTTPS endpoint run as in a cluster (they
	// need the tokenreviews, subjectaccessreviews and
	// extension-apiserver-authentication permissions).
	proc, err := c.procs.start("berth-scheduler", c.bin("berth-scheduler"),
		"--config="+filepath.Join(c.opts.Root, "manifests", "config", "scheduler-config.yaml"),
		"--kubeconfig="+kubeconfig,
		"--authentication-kubeconfig="+kubeconfig, "--authorization-kubeconfig="+kubeconfig,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(ports[0]),
		"--v=2",
	)
	if err != nil {
		return err
	}
	if err := c.waitHTTP(ctx, *proc, fmt.Sprintf("https://127.0.0.1:%d/healthz", ports[0]), insecureTLS()); err != nil {
		return err
	}
	return c.waitLease(ctx, *proc, SchedulerLease)
}

func (c *Cluster) startNodeFailover(ctx context.Context) error {
	kubeconfig, err := c.serviceAccountKubeconfig(ctx, NodeFailoverAccount)
	if err != nil {
		return err
	}
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	proc, err := c.procs.start("berth-nodefailover", c.bin("berth-nodefailover"),
		"--kubeconfig="+kubeconfig,
		"--node-dead-threshold="+c.opts.NodeDeadThreshold.String(),
		// Notice a dead node within seconds of the threshold.
		"--recheck-interval=2s",
		"--leader-elect=true",
		"--bind-address="+addr,
		"--v=2",
	)
	if err != nil {
		return err
	}
	if err := c.waitHTTP(ctx, *proc, "http://"+addr+"/healthz", nil); err != nil {
		return err
	}
	if err := c.waitLease(ctx, *proc, NodeFailoverLease); err != nil {
		return err
	}
	// Ready once the leader's caches are synced.
	return c.waitHTTP(ctx, *proc, "http://"+addr+"/readyz", nil)
}

// waitLease waits until the component holds its leader election Lease.
func (c *Cluster) waitLease(ctx context.Context, proc Proc, name string) error {
	client, err := kubernetes.NewForConfig(c.admin)
	if err != nil {
		return err
	}
	return c.waitFor(ctx, proc, "the Lease "+LeaseNamespace+"/"+name, func(ctx context.Context) (bool, error) {
		l, err := client.CoordinationV1().Leases(LeaseNamespace).Get(ctx, name, metav1.GetOptions{})
		return err == nil && leaseHeld(l), nil
	})
}

func leaseHeld(l *coordinationv1.Lease) bool {
	return ptr.Deref(l.Spec.HolderIdentity, "") != "" && l.Spec.RenewTime != nil &&
		time.Since(l.Spec.RenewTime.Time) < time.Duration(ptr.Deref(l.Spec.LeaseDurationSeconds, 15))*time.Second
}

func insecureTLS() *tls.Config {
	// The components' self-signed serving certificates; this only probes
	// /healthz on 127.0.0.1.
	return &tls.Config{InsecureSkipVerify: true} //nolint:gosec
}

// waitHTTP polls url until it answers 200.
func (c *Cluster) waitHTTP(ctx context.Context, proc Proc, url string, tlsConfig *tls.Config) error {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	defer hc.CloseIdleConnections()
	return c.waitFor(ctx, proc, url, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// waitFor polls cond until it holds, failing early (with the end of the
// log) when the process exits.
func (c *Cluster) waitFor(ctx context.Context, proc Proc, what string, cond func(context.Context) (bool, error)) error {
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, componentStartupTimeout, true, func(ctx context.Context) (bool, error) {
		if !c.procs.running(proc) {
			return false, fmt.Errorf("%s exited", proc.Name)
		}
		return cond(ctx)
	})
	if err != nil {
		hint := ""
		if lines, _ := grep(proc.Log, "forbidden"); len(lines) > 0 && contains(Audited, proc.Name) {
			hint = fmt.Sprintf(" (%s was denied access %d times: the RBAC in manifests/ is missing a permission)", proc.Name, len(lines))
		}
		return fmt.Errorf("waiting for %s: %w%s\n--- last lines of %s:\n%s", what, err, hint, c.rel(proc.Log), tail(proc.Log, 15))
	}
	return nil
}
