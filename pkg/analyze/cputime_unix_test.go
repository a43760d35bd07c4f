//go:build unix

package analyze

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time the process has used: on a shared, loaded machine the benchmark's
// wall clock overstates the cost, while CPU time per prompt does not depend on the neighbours.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
