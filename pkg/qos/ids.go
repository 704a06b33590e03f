package qos

import (
	"crypto/rand"
	"encoding/binary"
	"strings"
	"sync/atomic"
	"time"
)

// Message ids look like "q" + 13 base-32 digits of a 64-bit clock value +
// 10 base-32 digits of randomness, 24 characters in all. The clock value is
// the Unix time in milliseconds shifted left by idCounterBits, plus a
// counter, so ids made by one process strictly increase even within one
// millisecond or when the wall clock steps back. The digits are base32hex
// in lower case ("0"-"9", "a"-"v"), whose ASCII order is their numeric
// order: ids therefore sort lexicographically by creation time.
const (
	idPrefix      = "q"
	idClockDigits = 13
	idRandDigits  = 10
	idLen         = len(idPrefix) + idClockDigits + idRandDigits
	idCounterBits = 14
	idDigits      = "0123456789abcdefghijklmnopqrstuv"
)

// idClock is the last clock value handed out. It is the one piece of
// package state: ids must increase across every repository of the process.
var idClock atomic.Uint64

// NewID returns a new message id: unique across processes and nodes (it
// carries 50 random bits), fixed width, made of [0-9a-vq] only (safe as an
// SSE id), and greater than every id NewID returned before in this process.
// Ids of different nodes order by their wall clocks, to the millisecond.
//
// The numeric event ids of the seed server ("1", "2", …) sort below every
// id NewID makes, so a Last-Event-ID of the seed client used as the after
// argument of Pending skips nothing.
func NewID() string {
	return newIDAt(time.Now())
}

func newIDAt(now time.Time) string {
	ms := uint64(now.UnixMilli())
	var clock uint64
	for {
		prev := idClock.Load()
		clock = max(prev+1, ms<<idCounterBits)
		if idClock.CompareAndSwap(prev, clock) {
			break
		}
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:]) // never fails since Go 1.24
	var b [idLen]byte
	b[0] = idPrefix[0]
	putBase32(b[1:1+idClockDigits], clock)
	putBase32(b[1+idClockDigits:], binary.BigEndian.Uint64(rnd[:]))
	return string(b[:])
}

// putBase32 writes the low 5*len(dst) bits of v into dst, most significant
// digit first.
func putBase32(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = idDigits[v&31]
		v >>= 5
	}
}

// IDTime returns the creation time encoded in an id made by NewID, to the
// millisecond, and false for any other string.
func IDTime(id string) (time.Time, bool) {
	if len(id) != idLen || !strings.HasPrefix(id, idPrefix) {
		return time.Time{}, false
	}
	var clock uint64
	for i := 1; i < idLen; i++ {
		d := strings.IndexByte(idDigits, id[i])
		if d < 0 {
			return time.Time{}, false
		}
		if i <= idClockDigits {
			// The first digit holds only the top 4 bits of 64 (13*5 = 65).
			if i == 1 && d > 15 {
				return time.Time{}, false
			}
			clock = clock<<5 | uint64(d)
		}
	}
	return time.UnixMilli(int64(clock >> idCounterBits)), true
}
