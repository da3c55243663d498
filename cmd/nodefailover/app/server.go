package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/cli/globalflag"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/component-base/term"
	"k8s.io/klog/v2"

	"github.com/berth-dev/berth/pkg/nodefailover"
	"github.com/berth-dev/berth/pkg/version"
)

// NewCommand returns the berth-nodefailover command; run it with
// k8s.io/component-base/cli.Run.
func NewCommand() *cobra.Command {
	o := NewOptions()
	cmd := &cobra.Command{
		Use:   "berth-nodefailover",
		Short: "Fails pods over from dead nodes that pin them with local PersistentVolumes (" + version.String() + ")",
		Long: `berth-nodefailover watches nodes. When a node is dead (deleted, not Ready
for --node-dead-threshold, or not Ready and tainted node.kubernetes.io/out-of-service)
and every safety gate agrees, it retains and annotates the local PersistentVolumes
pinned to that node, deletes the claims bound to them (UID precondition) and then
force-deletes their pods, so that the owner (StatefulSet or operator) recreates
pod and claim on another node. The recreated claim is annotated for the database
operator to seed it from backup. Only opted-in claims are touched: the StorageClass
or the pod's owner must have the annotation berth.dev/failover: "enabled".`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("%q does not take arguments, got %q", cmd.CommandPath(), args)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if errs := o.Validate(); len(errs) > 0 {
				return fmt.Errorf("invalid flags: %w", errors.Join(errs...))
			}
			if err := logsapi.ValidateAndApply(o.Logs, nil); err != nil {
				return err
			}
			cliflag.PrintFlags(cmd.Flags())
			ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer cancel()
			return Run(ctx, o)
		},
	}
	nfs := o.Flags()
	globalflag.AddGlobalFlags(nfs.FlagSet("global"), cmd.Name(), logs.SkipLoggingConfigurationFlags())
	fs := cmd.Flags()
	for _, f := range nfs.FlagSets {
		fs.AddFlagSet(f)
	}
	cols, _, _ := term.TerminalSize(cmd.OutOrStdout())
	cliflag.SetUsageAndHelpFunc(cmd, nfs, cols)
	return cmd
}

// Run runs the controller (under leader election unless disabled) and the
// health/metrics server until ctx is cancelled. It returns an error when
// the set-up fails or leadership is lost.
func Run(ctx context.Context, o *Options) error {
	logger := klog.FromContext(ctx)
	if errs := o.Validate(); len(errs) > 0 {
		return fmt.Errorf("invalid flags: %w", errors.Join(errs...))
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	if err != nil {
		return fmt.Errorf("building the client configuration (--kubeconfig %q): %w", o.Kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = o.KubeAPIQPS, o.KubeAPIBurst
	cfg = rest.AddUserAgent(cfg, nodefailover.ComponentName)
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	version.RegisterMetrics()
	nodefailover.RegisterMetrics()
	logger.Info("Starting berth-nodefailover", "version", version.Version, "commit", version.GitCommit, "built", version.BuildDate)

	state := &runState{}
	var watchdog *leaderelection.HealthzAdaptor
	if o.LeaderElect {
		watchdog = leaderelection.NewLeaderHealthzAdaptor(20 * time.Second)
	}
	stopServer, err := serve(ctx, o.BindAddress, state, watchdog)
	if err != nil {
		return err
	}
	defer stopServer()

	runController := func(ctx context.Context) error {
		metadataClient, err := metadata.NewForConfig(cfg)
		if err != nil {
			return err
		}
		mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(client.Discovery()))
		factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
			informers.WithTransform(stripManagedFields))
		ctrl, err := nodefailover.New(client, metadataClient, mapper, factory, o.Controller)
		if err != nil {
			return err
		}
		state.controller.Store(ctrl)
		factory.Start(ctx.Done())
		defer factory.Shutdown()
		ctrl.Run(ctx)
		return nil
	}

	if !o.LeaderElect {
		state.leading.Store(true)
		return runController(ctx)
	}

	hostname, err := os.Hostname()
	if err != nil {
		return err
	}
	id := hostname + "_" + uuid.NewString()
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, o.LeaderElectNamespace, o.LeaderElectLeaseName,
		client.CoreV1(), client.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: id})
	if err != nil {
		return err
	}
	var (
		runErr   error
		lost     atomic.Bool
		runDone  = make(chan struct{})
		runOnce  sync.Once
		leaderWG sync.WaitGroup
	)
	leCtx, cancelLE := context.WithCancel(ctx)
	defer cancelLE()
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   o.LeaseDuration,
		RenewDeadline:   o.RenewDeadline,
		RetryPeriod:     o.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            o.LeaderElectLeaseName,
		WatchDog:        watchdog,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				leaderWG.Add(1)
				defer leaderWG.Done()
				logger.Info("Became the leader", "identity", id, "lease", o.LeaderElectNamespace+"/"+o.LeaderElectLeaseName)
				state.leading.Store(true)
				err := runController(ctx)
				runOnce.Do(func() { runErr = err; close(runDone) })
				if err != nil {
					cancelLE()
				}
			},
			OnStoppedLeading: func() {
				state.leading.Store(false)
				if ctx.Err() == nil {
					lost.Store(true)
					cancelLE()
				}
			},
			OnNewLeader: func(identity string) {
				if identity != id {
					logger.Info("Another instance leads", "leader", identity)
				}
			},
		},
	})
	if err != nil {
		return err
	}
	logger.Info("Waiting for leadership", "identity", id, "lease", o.LeaderElectNamespace+"/"+o.LeaderElectLeaseName)
	elector.Run(leCtx)
	leaderWG.Wait()
	select {
	case <-runDone:
		if runErr != nil {
			return runErr
		}
	default:
	}
	if lost.Load() {
		return errors.New("lost the leader election Lease; exiting so that a restart starts clean")
	}
	return nil
}

// stripManagedFields drops managedFields from cached objects (the
// controller never reads them; they are a large share of a pod's size).
func stripManagedFields(obj any) (any, error) {
	if accessor, err := meta.Accessor(obj); err == nil {
		accessor.SetManagedFields(nil)
	}
	return obj, nil
}

// runState is what /readyz looks at.
type runState struct {
	leading    atomic.Bool
	controller atomic.Pointer[nodefailover.Controller]
}

// ready: a standby replica is ready (to take over); the leader is ready
// once its informer caches are synced.
func (s *runState) ready() error {
	if !s.leading.Load() {
		return nil
	}
	ctrl := s.controller.Load()
	if ctrl == nil || !ctrl.HasSynced() {
		return errors.New("informer caches not synced yet")
	}
	return nil
}

// Handler returns the HTTP handler with /healthz, /readyz and /metrics.
func newHandler(state *runState, watchdog *leaderelection.HealthzAdaptor) http.Handler {
	mux := http.NewServeMux()
	check := func(checks ...func(*http.Request) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			for _, c := range checks {
				if err := c(r); err != nil {
					http.Error(w, err.Error(), http.StatusServiceUnavailable)
					return
				}
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("ok"))
		}
	}
	healthChecks := []func(*http.Request) error{}
	if watchdog != nil {
		healthChecks = append(healthChecks, func(r *http.Request) error {
			if err := watchdog.Check(r); err != nil {
				return fmt.Errorf("leader election: %w", err)
			}
			return nil
		})
	}
	mux.Handle("/healthz", check(healthChecks...))
	mux.Handle("/livez", check(healthChecks...))
	mux.Handle("/readyz", check(func(*http.Request) error { return state.ready() }))
	mux.Handle("/metrics", legacyregistry.Handler())
	return mux
}

// serve starts the HTTP server unless addr is "0" or empty; the returned
// function stops it.
func serve(ctx context.Context, addr string, state *runState, watchdog *leaderelection.HealthzAdaptor) (func(), error) {
	if addr == "" || addr == "0" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--bind-address %s: %w", addr, err)
	}
	srv := &http.Server{Handler: newHandler(state, watchdog), ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.FromContext(ctx).Error(err, "Health and metrics server failed")
		}
	})
	klog.FromContext(ctx).Info("Serving /healthz, /readyz and /metrics", "address", ln.Addr().String())
	return func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
		wg.Wait()
	}, nil
}
