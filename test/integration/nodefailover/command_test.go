package nodefailover

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/berth-dev/berth/cmd/nodefailover/app"
	"github.com/berth-dev/berth/test/integration/framework"
)

// TestCommandLeaderElectionAndServer runs the berth-nodefailover command
// (app.Run, as main does) against the control plane through a kubeconfig:
// it takes the Lease kube-system/berth-nodefailover, serves /healthz,
// /readyz and /metrics, a second instance waits as standby, and the Lease
// is released on shutdown.
func TestCommandLeaderElectionAndServer(t *testing.T) {
	e := framework.NewEnv(t)
	leases := e.Client.CoordinationV1().Leases("kube-system")

	start := func(name string) (addr string, stop func() error) {
		o := app.NewOptions()
		o.Kubeconfig = e.CP.KubeconfigPath
		o.BindAddress = freeAddr(t)
		o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = 4*time.Second, 3*time.Second, 500*time.Millisecond
		logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.Verbosity(1), ktesting.BufferLogs(false)))
		ctx, cancel := context.WithCancel(klog.NewContext(context.Background(), logger.WithName(name)))
		var wg sync.WaitGroup
		var err error
		wg.Go(func() { err = app.Run(ctx, o) })
		var once sync.Once
		stop = func() error {
			once.Do(func() { cancel(); wg.Wait() })
			return err
		}
		t.Cleanup(func() { _ = stop() })
		return o.BindAddress, stop
	}
	get := func(addr, path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	leaderAddr, stopLeader := start("leader")
	var holder string
	e.Eventually("Lease kube-system/berth-nodefailover held", func(ctx context.Context) (bool, error) {
		l, err := leases.Get(ctx, app.LeaseName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if l.Spec.HolderIdentity != nil {
			holder = *l.Spec.HolderIdentity
		}
		return holder != "", nil
	})
	e.Eventually("leader ready", func(context.Context) (bool, error) {
		code, _ := get(leaderAddr, "/readyz")
		return code == http.StatusOK, nil
	})
	code, body := get(leaderAddr, "/healthz")
	assert.Equal(t, http.StatusOK, code, body)
	code, body = get(leaderAddr, "/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "berth_nodes_considered_dead")
	assert.Contains(t, body, "berth_build_info")

	standbyAddr, stopStandby := start("standby")
	e.Eventually("standby serving", func(context.Context) (bool, error) {
		code, _ := get(standbyAddr, "/readyz")
		return code == http.StatusOK, nil
	})
	l, err := leases.Get(e.Ctx, app.LeaseName, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, holder, *l.Spec.HolderIdentity, "the first instance keeps leading")

	// Shutdown releases the Lease; the standby takes over.
	require.NoError(t, stopLeader())
	e.Eventually("standby leads", func(ctx context.Context) (bool, error) {
		l, err := leases.Get(ctx, app.LeaseName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "" && *l.Spec.HolderIdentity != holder, nil
	})
	require.NoError(t, stopStandby())
	l, err = leases.Get(e.Ctx, app.LeaseName, metav1.GetOptions{})
	require.NoError(t, err)
	assert.True(t, l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "", "released on shutdown")
	require.NoError(t, leases.Delete(e.Ctx, app.LeaseName, metav1.DeleteOptions{}))
}

// freeAddr returns a free loopback address.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}
