//go:build unix

package volumebinding

import (
	"syscall"
	"time"
)

// processCPU returns the user plus system CPU time used by the process so
// far. Benchmarks report it per operation ("cpu-ns/op") next to wall time,
// which other processes on a busy machine inflate.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
