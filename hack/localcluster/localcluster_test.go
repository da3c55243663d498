package localcluster

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/clientcmd"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	block, _ := pem.Decode(b)
	require.NotNil(t, block, path)
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return cert
}

func TestPKI(t *testing.T) {
	dir := t.TempDir()
	p, err := newPKI(dir)
	require.NoError(t, err)
	require.NoError(t, p.client("kcm", "system:kube-controller-manager"))
	require.NoError(t, p.client("admin", "admin", "system:masters"))
	require.NoError(t, p.serving("kube-apiserver", []string{"localhost"}, nil))

	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, filepath.Join(dir, "ca.crt")))
	admin := readCert(t, filepath.Join(dir, "admin.crt"))
	assert.Equal(t, "admin", admin.Subject.CommonName)
	assert.Equal(t, []string{"system:masters"}, admin.Subject.Organization, "groups")
	_, err = admin.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	assert.NoError(t, err)
	kcm := readCert(t, filepath.Join(dir, "kcm.crt"))
	assert.Empty(t, kcm.Subject.Organization)
	serving := readCert(t, filepath.Join(dir, "kube-apiserver.crt"))
	_, err = serving.Verify(x509.VerifyOptions{Roots: roots, DNSName: "localhost"})
	assert.NoError(t, err)
	info, err := os.Stat(filepath.Join(dir, "service-account.key"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "private keys are private")

	kc := filepath.Join(dir, "admin.kubeconfig")
	require.NoError(t, writeKubeconfig(kc, "https://127.0.0.1:1", filepath.Join(dir, "ca.crt"), "admin", filepath.Join(dir, "admin"), ""))
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	require.NoError(t, err)
	assert.Equal(t, "https://127.0.0.1:1", cfg.Host)
	assert.NotEmpty(t, cfg.CertData)
	assert.NotEmpty(t, cfg.CAData)
}

// TestProcs: a started process is recorded, seen running, and stopped;
// a record whose PID now runs another executable is never treated as ours.
func TestProcs(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	require.NoError(t, err)
	dir := t.TempDir()
	p := &procs{dir: dir}
	proc, err := p.start("sleeper", sleep, "60")
	require.NoError(t, err)
	st, err := ReadState(dir)
	require.NoError(t, err)
	require.Len(t, st.Procs, 1)
	assert.Equal(t, proc.PID, st.Procs[0].PID)
	assert.True(t, p.running(*proc))

	other := *proc
	other.Binary = "/not/the/binary"
	assert.False(t, alive(other), "a PID running another executable is not ours")

	require.NoError(t, p.stopAll(5*time.Second))
	assert.False(t, p.running(*proc))
	st, err = ReadState(dir)
	require.NoError(t, err)
	assert.Empty(t, st.Procs)
}
