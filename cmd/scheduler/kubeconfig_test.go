package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

func TestConfigWithKubeconfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}

	t.Run("fills an empty clientConnection.kubeconfig", func(t *testing.T) {
		p := write("a.yaml", "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- schedulerName: berth-scheduler\n")
		out, err := configWithKubeconfig(p, "/home/me/.kube/config")
		require.NoError(t, err)
		require.NotEqual(t, p, out)
		t.Cleanup(func() { os.Remove(out) })
		data, err := os.ReadFile(out)
		require.NoError(t, err)
		var cfg map[string]any
		require.NoError(t, yaml.Unmarshal(data, &cfg))
		assert.Equal(t, "/home/me/.kube/config", cfg["clientConnection"].(map[string]any)["kubeconfig"])
		assert.Equal(t, "KubeSchedulerConfiguration", cfg["kind"])
		assert.Len(t, cfg["profiles"], 1)
	})

	t.Run("a kubeconfig in the file wins", func(t *testing.T) {
		p := write("b.yaml", "kind: KubeSchedulerConfiguration\nclientConnection:\n  kubeconfig: /etc/kubeconfig\n")
		out, err := configWithKubeconfig(p, "/home/me/.kube/config")
		require.NoError(t, err)
		assert.Equal(t, p, out)
	})

	t.Run("unreadable file is an error", func(t *testing.T) {
		_, err := configWithKubeconfig(filepath.Join(dir, "missing.yaml"), "x")
		assert.Error(t, err)
	})
}

func TestRealConfigWithKubeconfig(t *testing.T) {
	out, err := configWithKubeconfig("../../manifests/config/scheduler-config.yaml", "/k")
	require.NoError(t, err)
	t.Cleanup(func() { os.Remove(out) })
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Contains(t, string(data), "kubeconfig: /k")
	assert.Contains(t, string(data), "LocalVolumeBinding")
}

// The wrapper rewrites --config before kube-scheduler's own RunE reads it.
func TestHonorKubeconfigFlag(t *testing.T) {
	var seen string
	var config, kubeconfig string
	cmd := &cobra.Command{RunE: func(*cobra.Command, []string) error { seen = config; return nil }}
	cmd.Flags().StringVar(&config, "config", "", "")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "")
	honorKubeconfigFlag(cmd)

	cmd.SetArgs([]string{"--config", "../../manifests/config/scheduler-config.yaml", "--kubeconfig", "/k"})
	require.NoError(t, cmd.Execute())
	require.NotEqual(t, "../../manifests/config/scheduler-config.yaml", seen)
	t.Cleanup(func() { os.Remove(seen) })
	data, err := os.ReadFile(seen)
	require.NoError(t, err)
	assert.Contains(t, string(data), "kubeconfig: /k")

	// Without --kubeconfig nothing changes.
	cmd.Flags().Lookup("kubeconfig").Changed = false
	cmd.SetArgs([]string{"--config", "x.yaml"})
	require.NoError(t, cmd.Execute())
	assert.Equal(t, "x.yaml", seen)
}
