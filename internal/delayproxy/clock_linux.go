package delayproxy

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// clock waits for short delays precisely: a timerfd read through the
// runtime's poller wakes at the timer's expiry, where a Go timer due in
// less than a millisecond waits for the poller's next whole millisecond
// (up to ~1 ms late, which a 1 ms delay would nearly double).
type clock struct {
	f   *os.File
	raw syscall.RawConn // f's descriptor, to arm the timer
}

// newClock makes a clock that ctx's end closes.
func newClock(ctx context.Context) (*clock, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("delayproxy: timerfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "timerfd")
	raw, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("delayproxy: timerfd: %w", err)
	}
	c := &clock{f: f, raw: raw}
	context.AfterFunc(ctx, func() { _ = c.f.Close() })
	return c, nil
}

// wait returns after d (> 0), or with an error once the clock is closed.
func (c *clock) wait(d time.Duration) error {
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(d.Nanoseconds())}
	var setErr error
	if err := c.raw.Control(func(fd uintptr) { setErr = unix.TimerfdSettime(int(fd), 0, &spec, nil) }); err != nil {
		return fmt.Errorf("delayproxy: timerfd: %w", err)
	}
	if setErr != nil {
		return fmt.Errorf("delayproxy: timerfd: %w", setErr)
	}
	var expirations [8]byte
	if _, err := c.f.Read(expirations[:]); err != nil {
		return fmt.Errorf("delayproxy: timerfd: %w", err)
	}
	return nil
}
