package sandbox

import "syscall"

// sysProcAttr makes the kernel kill a worker when the server dies, even
// mid-render: a worker blocked reading its stdin would exit on EOF by
// itself, but one running away in a template never reads.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
