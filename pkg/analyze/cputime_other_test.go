//go:build !unix

package analyze

import "time"

// processCPU is not measured on this platform; the benchmark then reports wall-clock rates only.
func processCPU() time.Duration { return 0 }
