//go:build !linux

package sandbox

import "syscall"

// sysProcAttr is empty where there is no Pdeathsig: a worker then outlives
// a crashed server until it next reads its stdin.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
