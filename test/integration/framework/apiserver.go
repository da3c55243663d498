package framework

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/apiserver/pkg/util/compatibility"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/keyutil"
	basecompatibility "k8s.io/component-base/compatibility"
	netutils "k8s.io/utils/net"

	apiserverapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	apiserveroptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"
)

// apiServer is a kube-apiserver running in the test process.
type apiServer struct {
	// config is the loopback admin config (system:masters, TLS with the
	// server's CA).
	config *rest.Config
	// errCh is closed when the server has stopped.
	errCh chan error
}

// startAPIServer starts kube-apiserver with the default admission plugins
// against etcdURL, keeping certificates and keys in dir. It follows
// k8s.io/kubernetes/cmd/kube-apiserver/app/testing.StartTestServer but takes
// a context instead of a testing.TB, so that one server can be shared by a
// whole test package (started from TestMain). The server stops when ctx is
// cancelled; wait on the returned server's errCh for it to finish.
func startAPIServer(ctx context.Context, etcdURL, dir string, modify func(*apiserveroptions.ServerRunOptions)) (*apiServer, error) {
	s := apiserveroptions.NewServerRunOptions()

	// A private registry, as upstream's test server does: the shared default
	// one is also used by the scheduler in this process.
	featureGate := utilfeature.DefaultMutableFeatureGate.DeepCopy()
	effectiveVersion := compatibility.DefaultKubeEffectiveVersionForTest()
	effectiveVersion.SetEmulationVersion(featureGate.EmulationVersion())
	effectiveVersion.SetMinCompatibilityVersion(featureGate.MinCompatibilityVersion())
	registry := basecompatibility.NewComponentGlobalsRegistry()
	if err := registry.Register(basecompatibility.DefaultKubeComponent, effectiveVersion, featureGate); err != nil {
		return nil, err
	}
	s.GenericServerRunOptions.ComponentGlobalsRegistry = registry

	// Register the flags so that every option gets its flag default, then
	// parse an empty command line: the defaults of a plain kube-apiserver.
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	for _, f := range s.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(nil); err != nil {
		return nil, err
	}

	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the kube-apiserver: %w", err)
	}
	s.SecureServing.Listener = listener
	s.SecureServing.BindPort = listener.Addr().(*net.TCPAddr).Port
	s.SecureServing.BindAddress = netutils.ParseIPSloppy("127.0.0.1")
	s.SecureServing.ExternalAddress = netutils.ParseIPSloppy("127.0.0.1")
	s.SecureServing.ServerCert.CertDirectory = dir

	s.Etcd.StorageConfig = *storagebackend.NewDefaultConfig("/registry", nil)
	s.Etcd.StorageConfig.Transport.ServerList = []string{etcdURL}
	s.ServiceClusterIPRanges = "10.0.0.0/16"
	// 127.0.0.1 is not a valid endpoint for the kubernetes service.
	s.EndpointReconcilerType = "none"

	saKey, err := writeServiceAccountKey(dir)
	if err != nil {
		return nil, err
	}
	s.ServiceAccountSigningKeyFile = saKey
	s.Authentication.ServiceAccounts.Issuers = []string{"https://berth-integration.invalid"}
	s.Authentication.ServiceAccounts.KeyFiles = []string{saKey}
	s.Authentication.APIAudiences = []string{"https://berth-integration.invalid"}

	if modify != nil {
		modify(s)
	}
	if err := registry.Set(); err != nil {
		return nil, err
	}

	completed, err := s.Complete(ctx)
	if err != nil {
		return nil, fmt.Errorf("completing kube-apiserver options: %w", err)
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return nil, fmt.Errorf("validating kube-apiserver options: %w", utilerrors.NewAggregate(errs))
	}
	config, err := apiserverapp.NewConfig(completed)
	if err != nil {
		return nil, err
	}
	completedConfig, err := config.Complete()
	if err != nil {
		return nil, err
	}
	server, err := apiserverapp.CreateServerChain(completedConfig)
	if err != nil {
		return nil, fmt.Errorf("creating the kube-apiserver: %w", err)
	}

	srv := &apiServer{errCh: make(chan error, 1)}
	go func() {
		defer close(srv.errCh)
		prepared, err := server.PrepareRun()
		if err != nil {
			srv.errCh <- err
			return
		}
		if err := prepared.Run(ctx); err != nil {
			srv.errCh <- err
		}
	}()

	srv.config = rest.CopyConfig(server.GenericAPIServer.LoopbackClientConfig)
	srv.config.QPS = 1000
	srv.config.Burst = 10000
	if err := srv.waitReady(ctx); err != nil {
		return srv, err
	}
	return srv, nil
}

// waitReady waits for /healthz and for the default namespace, as upstream's
// test server does.
func (s *apiServer) waitReady(ctx context.Context) error {
	client, err := kubernetes.NewForConfig(s.config)
	if err != nil {
		return err
	}
	failed := func() error {
		select {
		case err, ok := <-s.errCh:
			if !ok {
				return fmt.Errorf("kube-apiserver stopped while starting")
			}
			return fmt.Errorf("kube-apiserver failed: %w", err)
		default:
			return nil
		}
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := failed(); err != nil {
			return false, err
		}
		status := 0
		client.CoreV1().RESTClient().Get().AbsPath("/healthz").Do(ctx).StatusCode(&status)
		return status == 200, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for kube-apiserver /healthz: %w", err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := failed(); err != nil {
			return false, err
		}
		for _, ns := range []string{metav1.NamespaceDefault, metav1.NamespaceSystem, "kube-node-lease"} {
			if _, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
				// NotFound until the system namespaces controller ran;
				// anything else is retried too while the server settles.
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the system namespaces: %w", err)
	}
	return nil
}

func writeServiceAccountKey(dir string) (string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	pem, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "service-account.key")
	if err := keyutil.WriteKey(path, pem); err != nil {
		return "", err
	}
	return path, nil
}
