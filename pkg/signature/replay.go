package signature

import (
	"sync"
	"time"
)

// DefaultReplayCacheSize is the capacity of a ReplayCache made with size 0.
const DefaultReplayCacheSize = 1 << 18

// minSweep is the smallest number of entries that triggers a sweep.
const minSweep = 1024

// ReplayCache remembers accepted nonces until they expire, so that each
// signed request is accepted at most once. It holds at most its capacity;
// while it is full of unexpired nonces, Add refuses (fail closed). Expired
// entries are swept once the cache has doubled since the last sweep, so it
// stays near twice the live entries. Safe for concurrent use.
type ReplayCache struct {
	mu       sync.Mutex
	max      int
	seen     map[string]time.Time // nonce → expiry
	sweepAt  int                  // sweep when len(seen) reaches it
	lastFull time.Time            // last sweep made because the cache was full
}

// NewReplayCache returns a cache holding at most size nonces (0 →
// DefaultReplayCacheSize). A receiver needs room for every request it
// accepts within twice its window.
func NewReplayCache(size int) *ReplayCache {
	if size <= 0 {
		size = DefaultReplayCacheSize
	}
	return &ReplayCache{max: size, seen: make(map[string]time.Time), sweepAt: min(minSweep, size)}
}

// Add records nonce until expires (after which a request carrying it is
// refused for its timestamp anyway). It returns ErrReplay when the nonce was
// recorded and has not expired at now, and ErrReplayCacheFull when there is
// no room for it.
func (c *ReplayCache) Add(nonce string, expires, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, known := c.seen[nonce]
	if known && !now.After(exp) {
		return ErrReplay
	}
	if !known && len(c.seen) >= c.sweepAt {
		// When full, sweep at most every 100 ms: a full cache of live
		// nonces must not cost a scan per request.
		if len(c.seen) < c.max || now.Sub(c.lastFull) >= 100*time.Millisecond {
			if len(c.seen) >= c.max {
				c.lastFull = now
			}
			for n, e := range c.seen {
				if now.After(e) {
					delete(c.seen, n)
				}
			}
			c.sweepAt = min(max(2*len(c.seen), minSweep), c.max)
		}
		if len(c.seen) >= c.max {
			return ErrReplayCacheFull
		}
	}
	c.seen[nonce] = expires
	return nil
}

// Len returns the number of nonces held, expired ones included until the
// next sweep.
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}
