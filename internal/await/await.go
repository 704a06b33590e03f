package await

import (
	"testing"
	"time"
)

// interval is how often a condition is checked.
const interval = 5 * time.Millisecond

// Until polls fn until it returns nil, failing tb with fn's last error
// once timeout has passed.
func Until(tb testing.TB, timeout time.Duration, fn func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met within %v: %v", timeout, err)
		}
		time.Sleep(interval)
	}
}

// True polls cond until it holds, failing tb once timeout has passed with
// what it was waiting for.
func True(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for: %s", timeout, what)
		}
		time.Sleep(interval)
	}
}
