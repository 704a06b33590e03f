//go:build !linux

package main

import "time"

// setUserTimeout does nothing where TCP_USER_TIMEOUT does not exist: dead
// peers are then found by the kernel's own retransmission timeout.
func setUserTimeout(uintptr, time.Duration) error { return nil }
