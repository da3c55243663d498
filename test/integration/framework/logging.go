package framework

import (
	"flag"
	"io"
	"os"
	"strconv"
	"sync"

	"google.golang.org/grpc/grpclog"
	"k8s.io/klog/v2"
)

// VerbosityEnv names the environment variable that turns on component logs.
// Unset or 0: the kube-apiserver, etcd, controllers and scheduler only log
// errors (to stderr, which `go test` shows for failing packages and with -v).
// N > 0: everything at klog verbosity N, e.g.
//
//	BERTH_INTEGRATION_V=4 go test -race -count=1 -v -run TestX ./test/integration/...
const VerbosityEnv = "BERTH_INTEGRATION_V"

func logVerbosity() int {
	v, _ := strconv.Atoi(os.Getenv(VerbosityEnv))
	return v
}

var setupLoggingOnce sync.Once

// setupLogging configures klog (shared by every component in the process)
// and quiets gRPC, once, before any component starts.
func setupLogging() {
	setupLoggingOnce.Do(func() {
		fs := flag.NewFlagSet("klog", flag.ContinueOnError)
		klog.InitFlags(fs)
		v := logVerbosity()
		set := func(name, value string) { _ = fs.Set(name, value) }
		set("logtostderr", "true")
		if v > 0 {
			set("v", strconv.Itoa(v))
			set("legacy_stderr_threshold_behavior", "true")
		} else {
			set("legacy_stderr_threshold_behavior", "false")
			set("stderrthreshold", "ERROR")
		}
		// As upstream's integration framework does: etcd's client logs a
		// lot through grpclog; keep only errors.
		grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, os.Stderr))
	})
}
