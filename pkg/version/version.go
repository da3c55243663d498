// Package version holds Berth's build information, stamped at link time by the
// Makefile (-ldflags -X). The Kubernetes version the binaries are built from is
// reported separately by k8s.io/component-base/version.
package version

import "fmt"

var (
	// Version is Berth's release, e.g. v0.1.0 or v0.1.0-3-gabcdef.
	Version = "v0.0.0-dev"
	// GitCommit is the commit the binary was built from.
	GitCommit = "unknown"
	// BuildDate is the build time in RFC 3339.
	BuildDate = "1970-01-01T00:00:00Z"
)

// String renders the build information for logs and --help output.
func String() string {
	return fmt.Sprintf("berth %s (commit %s, built %s)", Version, GitCommit, BuildDate)
}
