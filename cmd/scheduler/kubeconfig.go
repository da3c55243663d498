package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"
)

// honorKubeconfigFlag makes `--kubeconfig` work together with `--config`.
// Upstream kube-scheduler ignores the (deprecated) --kubeconfig flag once a
// configuration file is given, which surprises users running
// `berth-scheduler --config manifests/config/scheduler-config.yaml
// --kubeconfig ~/.kube/config` outside the cluster. When both are set and the
// file leaves clientConnection.kubeconfig empty, the file is copied with the
// flag's value filled in and --config is pointed at the copy. A kubeconfig
// named in the file always wins, as upstream.
func honorKubeconfigFlag(cmd *cobra.Command) {
	run := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		cfgFlag, kcFlag := c.Flags().Lookup("config"), c.Flags().Lookup("kubeconfig")
		if cfgFlag != nil && kcFlag != nil && cfgFlag.Changed && kcFlag.Changed {
			path, err := configWithKubeconfig(cfgFlag.Value.String(), kcFlag.Value.String())
			if err != nil {
				return err
			}
			if path != cfgFlag.Value.String() {
				klog.InfoS("Using --kubeconfig with --config", "kubeconfig", kcFlag.Value.String(), "config", cfgFlag.Value.String())
				if err := cfgFlag.Value.Set(path); err != nil {
					return err
				}
			}
		}
		return run(c, args)
	}
}

// configWithKubeconfig returns the path of a configuration equal to configPath
// with clientConnection.kubeconfig set to kubeconfig, or configPath itself
// when the file already names a kubeconfig.
func configWithKubeconfig(configPath, kubeconfig string) (string, error) {
	data, err := os.ReadFile(configPath)
	if err != nil {
		return "", err
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return "", fmt.Errorf("parsing %s: %w", configPath, err)
	}
	if cfg == nil {
		cfg = map[string]any{}
	}
	conn, _ := cfg["clientConnection"].(map[string]any)
	if conn == nil {
		conn = map[string]any{}
	}
	if s, _ := conn["kubeconfig"].(string); s != "" {
		return configPath, nil
	}
	conn["kubeconfig"] = kubeconfig
	cfg["clientConnection"] = conn
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp("", "berth-scheduler-config-*.yaml")
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.Write(out); err != nil {
		return "", err
	}
	return f.Name(), nil
}
