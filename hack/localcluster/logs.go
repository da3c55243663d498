package localcluster

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// Audited are the components whose logs CheckPermissions reads: Berth's,
// which run bound only to the roles in manifests/.
var Audited = []string{"berth-scheduler", "berth-nodefailover"}

// CheckPermissions fails when a Berth component was denied anything: the
// API server's "forbidden" in its log means manifests/ lacks a permission
// (list/watch denials only show up in the log, the component keeps
// retrying). It returns the offending lines.
func (c *Cluster) CheckPermissions() error {
	var found []string
	for _, p := range c.procs.st.Procs {
		if !contains(Audited, p.Name) {
			continue
		}
		lines, err := grep(p.Log, "forbidden")
		if err != nil {
			return err
		}
		for _, l := range lines {
			found = append(found, p.Name+": "+l)
		}
	}
	if len(found) > 0 {
		if len(found) > 10 {
			found = append(found[:10], fmt.Sprintf("... and %d more", len(found)-10))
		}
		return fmt.Errorf("a Berth component was denied access (manifests/ RBAC is missing a permission):\n  %s", strings.Join(found, "\n  "))
	}
	return nil
}

func grep(path, needle string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1024*1024), 4*1024*1024)
	for sc.Scan() {
		if strings.Contains(strings.ToLower(sc.Text()), needle) {
			out = append(out, sc.Text())
		}
	}
	return out, sc.Err()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
