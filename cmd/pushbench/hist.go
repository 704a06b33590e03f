package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histSubBits sets the histogram's precision: 2^histSubBits buckets per power
// of two, i.e. values are kept to within about 3 %.
const histSubBits = 5

const histBuckets = (64 - histSubBits) << histSubBits

// hist is a lock-free log-linear histogram of non-negative durations in
// nanoseconds. Record may be called from many goroutines at once.
type hist struct {
	count   atomic.Int64
	max     atomic.Int64
	buckets [histBuckets]atomic.Int64
}

func histBucket(v int64) int {
	if v < 1<<histSubBits {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - histSubBits - 1
	return (shift+1)<<histSubBits + int(v>>shift) - 1<<histSubBits
}

// histUpper returns the largest value that falls into bucket i.
func histUpper(i int) int64 {
	if i < 1<<histSubBits {
		return int64(i)
	}
	shift := i>>histSubBits - 1
	low := int64(1<<histSubBits+i&(1<<histSubBits-1)) << shift
	return low + (int64(1)<<shift - 1)
}

// Record adds one value; negative values count as zero.
func (h *hist) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.buckets[histBucket(v)].Add(1)
	h.count.Add(1)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Quantile returns an upper bound of the q-quantile (0 < q ≤ 1) within the
// histogram's precision, capped at the exact maximum; 0 when empty.
func (h *hist) Quantile(q float64) time.Duration {
	n := h.count.Load()
	if n == 0 {
		return 0
	}
	rank := int64(q*float64(n) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen int64
	for i := range h.buckets {
		seen += h.buckets[i].Load()
		if seen >= rank {
			v := histUpper(i)
			if m := h.max.Load(); v > m {
				v = m
			}
			return time.Duration(v)
		}
	}
	return time.Duration(h.max.Load())
}

// Summary is the quantile summary of a histogram, in microseconds.
type Summary struct {
	Count int64   `json:"count"`
	P50Us float64 `json:"p50_us"`
	P99Us float64 `json:"p99_us"`
	MaxUs float64 `json:"max_us"`
}

// Summary summarises the histogram.
func (h *hist) Summary() Summary {
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	return Summary{
		Count: h.count.Load(),
		P50Us: us(h.Quantile(0.50)),
		P99Us: us(h.Quantile(0.99)),
		MaxUs: us(time.Duration(h.max.Load())),
	}
}
