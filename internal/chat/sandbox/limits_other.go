//go:build !linux

package sandbox

// applyLimits applies only the Go runtime's limits: RLIMIT_AS is not
// enforced (or not meaningful) outside Linux, so a huge allocation there
// can still take the worker's memory; the worker remains a separate
// process, so the server survives it.
func applyLimits(h hello) error {
	setGoLimits(h)
	return nil
}
