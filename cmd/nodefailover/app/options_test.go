package app

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-dev/berth/pkg/nodefailover"
)

func TestDefaults(t *testing.T) {
	o := NewOptions()
	assert.Empty(t, o.Validate())
	assert.Equal(t, 5*time.Minute, o.Controller.NodeDeadThreshold)
	assert.Equal(t, 0.3, o.Controller.MaxUnreadyFraction)
	assert.Equal(t, 1, o.Controller.MaxFailoversPerOwner)
	assert.False(t, o.Controller.DryRun)
	assert.True(t, o.LeaderElect)
	assert.Equal(t, "kube-system", o.LeaderElectNamespace)
	assert.Equal(t, "berth-nodefailover", o.LeaderElectLeaseName)
}

func TestFlagsParseAndValidate(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // substring naming the flag; empty: valid
		check   func(t *testing.T, o *Options)
	}{
		{name: "all set", args: []string{"--node-dead-threshold=90s", "--max-unready-fraction=1", "--max-failovers-per-owner=2",
			"--dry-run", "--leader-elect=false", "--bind-address=127.0.0.1:0", "--kubeconfig=/tmp/kc", "--recheck-interval=5s"},
			check: func(t *testing.T, o *Options) {
				assert.Equal(t, 90*time.Second, o.Controller.NodeDeadThreshold)
				assert.Equal(t, 1.0, o.Controller.MaxUnreadyFraction)
				assert.Equal(t, 2, o.Controller.MaxFailoversPerOwner)
				assert.True(t, o.Controller.DryRun)
				assert.False(t, o.LeaderElect)
				assert.Equal(t, "/tmp/kc", o.Kubeconfig)
				assert.Equal(t, 5*time.Second, o.Controller.RecheckInterval)
			}},
		{name: "zero threshold is allowed", args: []string{"--node-dead-threshold=0s"}},
		{name: "negative threshold", args: []string{"--node-dead-threshold=-1m"}, wantErr: "--node-dead-threshold must not be negative"},
		{name: "fraction zero", args: []string{"--max-unready-fraction=0"}, wantErr: "--max-unready-fraction must be in (0, 1]"},
		{name: "fraction above one", args: []string{"--max-unready-fraction=1.01"}, wantErr: "--max-unready-fraction must be in (0, 1]"},
		{name: "fraction negative", args: []string{"--max-unready-fraction=-0.5"}, wantErr: "--max-unready-fraction"},
		{name: "budget zero", args: []string{"--max-failovers-per-owner=0"}, wantErr: "--max-failovers-per-owner must be at least 1"},
		{name: "recheck zero", args: []string{"--recheck-interval=0s"}, wantErr: "--recheck-interval"},
		{name: "empty lease namespace", args: []string{"--leader-elect-namespace="}, wantErr: "--leader-elect-namespace"},
		{name: "empty lease namespace without election", args: []string{"--leader-elect=false", "--leader-elect-namespace="}},
		{name: "renew deadline not shorter than lease", args: []string{"--leader-elect-renew-deadline=20s"}, wantErr: "--leader-elect-lease-duration"},
		{name: "bad bind address", args: []string{"--bind-address=8080"}, wantErr: "--bind-address"},
		{name: "disabled server", args: []string{"--bind-address=0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOptions()
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			o.AddFlags(fs)
			require.NoError(t, fs.Parse(tc.args))
			errs := o.Validate()
			if tc.wantErr == "" {
				assert.Empty(t, errs)
				if tc.check != nil {
					tc.check(t, o)
				}
				return
			}
			require.NotEmpty(t, errs)
			var msgs []string
			for _, e := range errs {
				msgs = append(msgs, e.Error())
			}
			assert.Contains(t, strings.Join(msgs, "\n"), tc.wantErr)

			// The command refuses to start with the same message, before
			// it talks to any API server.
			cmd := NewCommand()
			cmd.SetArgs(tc.args)
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			err := cmd.Execute()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

func TestCommandRejectsArguments(t *testing.T) {
	cmd := NewCommand()
	cmd.SetArgs([]string{"extra"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	assert.ErrorContains(t, cmd.Execute(), "does not take arguments")
}

func TestHealthReadyAndMetrics(t *testing.T) {
	nodefailover.RegisterMetrics()
	state := &runState{}
	srv := httptest.NewServer(newHandler(state, nil))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer func() { _ = resp.Body.Close() }()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}
	code, body := get("/healthz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok", body)
	code, _ = get("/readyz")
	assert.Equal(t, http.StatusOK, code, "a standby replica is ready")
	state.leading.Store(true)
	code, body = get("/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code, "the leader is ready once its caches are synced")
	assert.Contains(t, body, "not synced")
	code, body = get("/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "berth_nodes_considered_dead")
}
