package framework

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/klog/v2"
)

// MainOptions tune Main.
type MainOptions struct {
	// ControlPlane configures the shared control plane.
	ControlPlane ControlPlaneOptions
	// Controllers are started once for the whole package, with
	// ControllerConfig (zero value: DefaultControllerConfig). Leave empty
	// to start controllers per test with StartControllers instead.
	Controllers      []Controller
	ControllerConfig *ControllerConfig
	// SkipLeakCheck turns off the goroutine leak check that runs after
	// the tests and the teardown.
	SkipLeakCheck bool
}

var (
	sharedMu sync.Mutex
	shared   *ControlPlane
	// sharedControllers are the controllers started by Main, if any.
	sharedControllers *Controllers
)

// Main runs a test package against one control plane shared by all its
// tests: it starts etcd and the kube-apiserver, runs the tests, tears
// everything down, checks for leaked goroutines and exits. Use it as
//
//	func TestMain(m *testing.M) { framework.Main(m, framework.MainOptions{}) }
//
// and get the control plane in tests with Shared(t), or just call NewEnv(t).
// Tests isolate themselves by namespace and by unique names for
// cluster-scoped objects (Env does both).
func Main(m *testing.M, opts MainOptions) {
	os.Exit(runMain(m, opts))
}

func runMain(m *testing.M, opts MainOptions) int {
	flag.Parse()
	var leakOpts []goleak.Option
	if !opts.SkipLeakCheck {
		// Start the on-demand goroutines of healthz first so that they
		// count as background, as upstream's IgnoreBackgroundGoroutines.
		_ = healthz.LogHealthz.Check(nil)
		leakOpts = append(leakOpts, goleak.IgnoreCurrent())
		leakOpts = append(leakOpts, knownLeaks()...)
	}

	start := time.Now()
	cp, err := StartControlPlane(context.Background(), opts.ControlPlane)
	if err != nil {
		fmt.Fprintf(os.Stderr, "framework.Main: starting the control plane: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "framework.Main: control plane up in %v\n", time.Since(start).Round(time.Millisecond))
	sharedMu.Lock()
	shared = cp
	sharedMu.Unlock()

	if len(opts.Controllers) > 0 {
		cfg := DefaultControllerConfig()
		if opts.ControllerConfig != nil {
			cfg = *opts.ControllerConfig
		}
		sharedControllers, err = cp.RunControllers(context.Background(), cfg, opts.Controllers...)
		if err != nil {
			fmt.Fprintf(os.Stderr, "framework.Main: starting controllers: %v\n", err)
			cp.Stop()
			return 1
		}
	}

	code := m.Run()

	if sharedControllers != nil {
		sharedControllers.Stop()
	}
	sharedMu.Lock()
	shared = nil
	sharedMu.Unlock()
	cp.Stop()
	klog.StopFlushDaemon()

	if !opts.SkipLeakCheck {
		if err := findLeaks(leakOpts...); err != nil {
			fmt.Fprintf(os.Stderr, "framework.Main: goroutines leaked after the teardown:\n%v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// Shared returns the package's shared control plane started by Main. It
// fails the test if TestMain does not call Main.
func Shared(t testing.TB) *ControlPlane {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil {
		t.Fatal("no shared control plane: call framework.Main(m, ...) from TestMain")
	}
	return shared
}

// knownLeaks lists goroutines that outlive a clean teardown for reasons
// outside our control.
func knownLeaks() []goleak.Option {
	return []goleak.Option{
		// lumberjack (audit log rotation) never stops its mill goroutine.
		goleak.IgnoreTopFunction("gopkg.in/natefinch/lumberjack%2ev2.(*Logger).millRun"),
		// SPDY keeps a goroutine for ten minutes after a failed shutdown.
		goleak.IgnoreTopFunction("github.com/moby/spdystream.(*Connection).shutdown"),
	}
}

// findLeaks retries goleak.Find for a while: some goroutines take a moment
// to notice their context is gone, and client-go's TLS transport cache is
// only cleaned up by finalizers.
func findLeaks(opts ...goleak.Option) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := goleak.Find(opts...)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		runtime.GC()
		time.Sleep(200 * time.Millisecond)
	}
}
