package framework

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// embeddedEtcd is an etcd server running inside the test process
// (go.etcd.io/etcd/server/v3/embed), so no etcd binary is needed.
type embeddedEtcd struct {
	etcd *embed.Etcd
	// URL is the client URL to give the kube-apiserver.
	URL string
}

// portLock serialises "pick free ports, then bind them" between etcd
// instances started concurrently in one process (as the apiserver's
// testserver.RunEtcd does).
var portLock sync.Mutex

// startEtcd starts a single-member etcd with its data in dataDir. fsync is
// off: the data only has to live as long as the test binary.
func startEtcd(dataDir string) (*embeddedEtcd, error) {
	portLock.Lock()
	defer portLock.Unlock()

	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	cfg := embed.NewConfig()
	cfg.Name = "berth-integration"
	cfg.Dir = dataDir
	cfg.UnsafeNoFsync = true
	// 8 GiB like the upstream integration etcd; the default 2 GiB quota is
	// plenty too, this only avoids surprises in long suites.
	cfg.QuotaBackendBytes = 8 * 1024 * 1024 * 1024
	clientURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))}
	peerURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))}
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(etcdLogger())
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting embedded etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd failed while starting: %w", err)
	case <-time.After(60 * time.Second):
		e.Server.Stop()
		e.Close()
		return nil, fmt.Errorf("embedded etcd took more than 60s to start")
	}
	return &embeddedEtcd{etcd: e, URL: clientURL.String()}, nil
}

// Stop shuts etcd down and waits for it.
func (e *embeddedEtcd) Stop() {
	e.etcd.Close()
}

// etcdLogger logs etcd errors to stderr and drops the rest, unless verbose
// logging was asked for (see logging.go).
func etcdLogger() *zap.Logger {
	level := zapcore.ErrorLevel
	if logVerbosity() > 0 {
		level = zapcore.WarnLevel
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(level)
	cfg.OutputPaths = []string{"stderr"}
	cfg.ErrorOutputPaths = []string{"stderr"}
	cfg.Sampling = nil
	lg, err := cfg.Build(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return shutdownNoiseFilter{c} }))
	if err != nil {
		return zap.NewNop()
	}
	return lg.Named("etcd")
}

// shutdownNoiseFilter drops the errors embedded etcd logs when it is closed
// ("setting up serving from embedded etcd failed": server closed).
type shutdownNoiseFilter struct{ zapcore.Core }

func (f shutdownNoiseFilter) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if ent.Message == "setting up serving from embedded etcd failed." {
		return ce
	}
	return f.Core.Check(ent, ce)
}

func (f shutdownNoiseFilter) With(fields []zapcore.Field) zapcore.Core {
	return shutdownNoiseFilter{f.Core.With(fields)}
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
