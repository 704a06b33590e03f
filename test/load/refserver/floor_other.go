//go:build !linux

package main

import "errors"

// serveFloor needs Linux's epoll.
func serveFloor(addr, base string) error {
	return errors.New("the epoll design needs Linux")
}
