package qos

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNewIDFormat(t *testing.T) {
	before := time.Now().Truncate(time.Millisecond)
	id := NewID()
	after := time.Now()
	if len(id) != 24 || id[0] != 'q' {
		t.Fatalf("NewID() = %q: want 24 characters starting with q", id)
	}
	if strings.Trim(id[1:], idDigits) != "" {
		t.Fatalf("NewID() = %q: characters outside [0-9a-v]", id)
	}
	ts, ok := IDTime(id)
	if !ok || ts.Before(before) || ts.After(after) {
		t.Fatalf("IDTime(%q) = %v, %v; want between %v and %v", id, ts, ok, before, after)
	}
	for _, bad := range []string{"", "17", "q", id[:23], id + "0", "x" + id[1:], "qw" + id[2:], strings.ToUpper(id)} {
		if _, ok := IDTime(bad); ok {
			t.Errorf("IDTime(%q) accepted a foreign id", bad)
		}
	}
}

func TestNewIDOrdered(t *testing.T) {
	prev := NewID()
	for range 100000 {
		id := NewID()
		if id <= prev {
			t.Fatalf("NewID() = %q after %q: not increasing", id, prev)
		}
		prev = id
	}
	// The seed's numeric event ids sort below ours.
	for _, seedID := range []string{"0", "1", "99999999999999999999", "123abc"} {
		if seedID >= prev {
			t.Fatalf("seed id %q sorts after %q", seedID, prev)
		}
	}
}

func TestNewIDClockStepsBack(t *testing.T) {
	now := time.Now()
	a := newIDAt(now.Add(20 * time.Millisecond))
	b := newIDAt(now.Add(-time.Hour))
	if b <= a {
		t.Fatalf("id %q made after the clock stepped back is not greater than %q", b, a)
	}
	if ta, _ := IDTime(a); ta.UnixMilli() != now.Add(20*time.Millisecond).UnixMilli() {
		t.Fatalf("IDTime(%q) = %v, want %v", a, ta, now.Add(20*time.Millisecond))
	}
}

func TestNewIDUniqueConcurrently(t *testing.T) {
	const workers, each = 8, 5000
	var mu sync.Mutex
	seen := make(map[string]bool, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]string, each)
			for i := range local {
				local[i] = NewID()
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range local {
				if seen[id] {
					t.Errorf("duplicate id %q", id)
				}
				seen[id] = true
			}
		}()
	}
	wg.Wait()
}

func TestNewIDRandomPartDiffers(t *testing.T) {
	// Two nodes in the same millisecond with the same counter differ by
	// the random part: simulate by comparing the random tails.
	a, b := NewID(), NewID()
	if a[1+idClockDigits:] == b[1+idClockDigits:] {
		t.Fatalf("random parts of %q and %q are equal", a, b)
	}
}
