package main

import (
	"os/exec"
	"syscall"
)

// endWithParent makes the child receive SIGTERM when the tool dies, even
// when it is killed.
func endWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
