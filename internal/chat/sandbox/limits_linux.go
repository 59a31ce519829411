package sandbox

import (
	"fmt"
	"os"
	"syscall"
)

// applyLimits bounds this worker: the Go runtime's limits, then
// RLIMIT_AS, the one that turns a template's huge allocation into a
// failed mmap (and a dead worker) instead of the whole machine's memory.
//
// The address-space limit is headroom over what the process has mapped by
// now, not an absolute figure: the Go runtime reserves about 1.2 GiB of
// address space at start, a cgo binary's libraries and threads more
// (a lumen worker has 1.6 GiB mapped, 32 MiB resident, before it reads
// its first message), and a -race build maps
// shadow memory far beyond any absolute limit; none of it is memory used.
// An absolute 2 GiB would leave a worker of the lumen binary almost
// nothing and would kill a race-built worker at once.
func applyLimits(h hello) error {
	setGoLimits(h)
	if h.MemoryLimit == 0 {
		return nil
	}
	base, err := addressSpace()
	if err != nil {
		return err
	}
	limit := base + h.MemoryLimit
	var cur syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &cur); err != nil {
		return fmt.Errorf("reading RLIMIT_AS: %w", err)
	}
	// An unprivileged process cannot raise its hard limit; a tighter one
	// set from outside stays.
	limit = min(limit, cur.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
		return fmt.Errorf("setting RLIMIT_AS to %d bytes: %w", limit, err)
	}
	return nil
}

// addressSpace is the process's mapped address space in bytes (VmSize).
func addressSpace() (uint64, error) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, fmt.Errorf("reading address space size: %w", err)
	}
	var pages uint64
	if _, err := fmt.Sscan(string(b), &pages); err != nil {
		return 0, fmt.Errorf("reading address space size: %w", err)
	}
	return pages * uint64(os.Getpagesize()), nil
}
