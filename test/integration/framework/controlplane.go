package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/klog/v2"

	apiserveroptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"
	namespacecontroller "k8s.io/kubernetes/pkg/controller/namespace"
	serviceaccountcontroller "k8s.io/kubernetes/pkg/controller/serviceaccount"
)

// ControlPlaneOptions tune StartControlPlane. The zero value is a plain
// kube-apiserver with default flags (default admission plugins included).
type ControlPlaneOptions struct {
	// ModifyAPIServerOptions, if set, edits the kube-apiserver options
	// before they are completed (e.g. to enable an API group).
	ModifyAPIServerOptions func(*apiserveroptions.ServerRunOptions)
}

// ControlPlane is an embedded etcd plus a kube-apiserver running in the test
// process, with the two controllers every real cluster has and the default
// admission plugins need: the serviceaccount controller (creates the
// "default" ServiceAccount that the ServiceAccount admission plugin requires
// before it admits pods) and the namespace controller (finishes namespace
// deletion). Everything else (PV controller, node lifecycle, scheduler, ...)
// is started on demand: see StartControllers and StartScheduler.
type ControlPlane struct {
	// Config is an admin config for the kube-apiserver (loopback,
	// system:masters). Treat it as read-only; use RESTConfig for a copy.
	Config *rest.Config
	// Client is an admin clientset.
	Client kubernetes.Interface
	// KubeconfigPath is an admin kubeconfig file for Config.
	KubeconfigPath string
	// Dir is the control plane's temporary directory (removed by Stop).
	Dir string

	etcd     *embeddedEtcd
	server   *apiServer
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// StartControlPlane starts etcd, the kube-apiserver and the serviceaccount
// and namespace controllers, and returns when the API is usable. It does not
// need a testing.TB so that TestMain can share one control plane across a
// package (see Main); call Stop when done. Within a single test,
// StartTestControlPlane is the shorter form.
func StartControlPlane(ctx context.Context, opts ControlPlaneOptions) (_ *ControlPlane, err error) {
	setupLogging()
	dir, err := os.MkdirTemp("", "berth-integration-")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	cp := &ControlPlane{Dir: dir, cancel: cancel}
	defer func() {
		if err != nil {
			cp.Stop()
		}
	}()

	start := time.Now()
	cp.etcd, err = startEtcd(filepath.Join(dir, "etcd"))
	if err != nil {
		return nil, err
	}
	klog.FromContext(ctx).V(1).Info("embedded etcd started", "url", cp.etcd.URL, "duration", time.Since(start))

	certDir := filepath.Join(dir, "apiserver")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, err
	}
	cp.server, err = startAPIServer(ctx, cp.etcd.URL, certDir, opts.ModifyAPIServerOptions)
	if err != nil {
		return nil, err
	}
	cp.Config = cp.server.config
	cp.Client, err = kubernetes.NewForConfig(cp.RESTConfig("berth-integration"))
	if err != nil {
		return nil, err
	}
	cp.KubeconfigPath = filepath.Join(dir, "admin.kubeconfig")
	if err := WriteKubeconfig(cp.Config, cp.KubeconfigPath); err != nil {
		return nil, err
	}
	if err := cp.startCoreControllers(ctx); err != nil {
		return nil, err
	}
	klog.FromContext(ctx).V(1).Info("control plane started", "host", cp.Config.Host, "duration", time.Since(start))
	return cp, nil
}

// StartTestControlPlane starts a control plane private to one test and stops
// it when the test ends. Prefer the package-wide one (Main/Shared) when
// tests can share: starting a control plane takes seconds.
func StartTestControlPlane(t testing.TB, opts ControlPlaneOptions) *ControlPlane {
	t.Helper()
	cp, err := StartControlPlane(context.Background(), opts)
	if err != nil {
		t.Fatalf("starting the control plane: %v", err)
	}
	t.Cleanup(cp.Stop)
	return cp
}

// RESTConfig returns a copy of the admin config with the given user agent
// (which shows up in the API server's logs and metrics).
func (cp *ControlPlane) RESTConfig(userAgent string) *rest.Config {
	return rest.AddUserAgent(rest.CopyConfig(cp.Config), userAgent)
}

// NewClient returns an admin clientset with the given user agent.
func (cp *ControlPlane) NewClient(userAgent string) kubernetes.Interface {
	return kubernetes.NewForConfigOrDie(cp.RESTConfig(userAgent))
}

// Stop stops the controllers, the kube-apiserver and etcd, waits for them
// and removes the temporary directory. It is safe to call more than once.
func (cp *ControlPlane) Stop() {
	cp.stopOnce.Do(func() {
		cp.cancel()
		cp.wg.Wait()
		if cp.server != nil {
			select {
			case err := <-cp.server.errCh:
				if err != nil {
					klog.Background().Error(err, "kube-apiserver did not shut down cleanly")
				}
			case <-time.After(time.Minute):
				klog.Background().Error(nil, "kube-apiserver did not shut down within a minute")
			}
		}
		if cp.etcd != nil {
			cp.etcd.Stop()
		}
		if err := os.RemoveAll(cp.Dir); err != nil {
			klog.Background().Error(err, "removing the control plane directory", "dir", cp.Dir)
		}
	})
}

// startCoreControllers runs the serviceaccount and namespace controllers
// until the control plane stops.
func (cp *ControlPlane) startCoreControllers(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	client := cp.NewClient("serviceaccount-controller")
	factory := informers.NewSharedInformerFactory(client, 0)
	sa, err := serviceaccountcontroller.NewServiceAccountsController(logger,
		factory.Core().V1().ServiceAccounts(), factory.Core().V1().Namespaces(),
		client, serviceaccountcontroller.DefaultServiceAccountsControllerOptions())
	if err != nil {
		return err
	}

	// As kube-controller-manager does: the namespace controller gets a much
	// higher client rate limit.
	nsConfig := cp.RESTConfig("namespace-controller")
	nsConfig.QPS *= 20
	nsConfig.Burst *= 100
	nsClient, err := kubernetes.NewForConfig(nsConfig)
	if err != nil {
		return err
	}
	nsMetadata, err := metadata.NewForConfig(nsConfig)
	if err != nil {
		return err
	}
	ns := namespacecontroller.NewNamespaceController(ctx, nsClient, nsMetadata,
		nsClient.Discovery().ServerPreferredNamespacedResources,
		factory.Core().V1().Namespaces(), 5*time.Minute, v1.FinalizerKubernetes)

	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("informer for %v did not sync", typ)
		}
	}
	cp.wg.Go(func() { sa.Run(ctx, 1) })
	cp.wg.Go(func() { ns.Run(ctx, 2) })
	cp.wg.Go(func() {
		<-ctx.Done()
		factory.Shutdown()
	})
	return nil
}

// WriteKubeconfig writes a kubeconfig file for cfg (server, CA, TLS server
// name, bearer token or client certificate) to path.
func WriteKubeconfig(cfg *rest.Config, path string) error {
	if cfg == nil {
		return errors.New("WriteKubeconfig: nil config")
	}
	caData := cfg.CAData
	if len(caData) == 0 && cfg.CAFile != "" {
		b, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return err
		}
		caData = b
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["berth-integration"] = &clientcmdapi.Cluster{
		Server:                   cfg.Host,
		CertificateAuthorityData: caData,
		TLSServerName:            cfg.ServerName,
		InsecureSkipTLSVerify:    cfg.Insecure,
	}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{
		Token:                 cfg.BearerToken,
		ClientCertificateData: cfg.CertData,
		ClientKeyData:         cfg.KeyData,
	}
	kc.Contexts["berth-integration"] = &clientcmdapi.Context{Cluster: "berth-integration", AuthInfo: "admin"}
	kc.CurrentContext = "berth-integration"
	return clientcmd.WriteToFile(*kc, path)
}
