package admission

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushd/pushd/internal/httpx"
)

// Config configures New.
type Config struct {
	// MaxInFlight bounds the connects being admitted at once. 0: no bound.
	MaxInFlight int
	// MaxWaiting bounds the connects waiting for a place when MaxInFlight
	// are being admitted; one more is refused at once. 0: none wait.
	MaxWaiting int
	// Wait bounds how long a connect waits for a place; then it is
	// refused. 0: 1 s.
	Wait time.Duration
	// Rate bounds the connects admitted per second. 0: no bound.
	Rate int
	// Burst is how many connects the rate lets through at once after a
	// quiet period. 0: Rate (one second's worth).
	Burst int
	// RetryAfter is the shortest Retry-After of a refusal; each refusal
	// says a whole number of seconds drawn from [RetryAfter, 2·RetryAfter],
	// so that the refused do not all come back in the same second.
	// 0: 1 s.
	RetryAfter time.Duration
}

// Stats are a Limiter's counts since New.
type Stats struct {
	// Admitted counts the connects let through; Refused those answered
	// 503, RefusedRate those of them refused by the rate.
	Admitted, Refused, RefusedRate uint64
	// InFlight is the number of connects being admitted now, Waiting the
	// number waiting for a place.
	InFlight, Waiting int
}

// Limiter admits connects within its Config's bounds.
type Limiter struct {
	cfg     Config
	slots   chan struct{} // a token per connect being admitted; nil: no bound
	waiting atomic.Int64

	mu     sync.Mutex
	tokens float64
	last   time.Time

	admitted, refused, refusedRate atomic.Uint64
}

// New returns a Limiter for cfg; a negative field is an error.
func New(cfg Config) (*Limiter, error) {
	if cfg.MaxInFlight < 0 || cfg.MaxWaiting < 0 || cfg.Wait < 0 || cfg.Rate < 0 || cfg.Burst < 0 || cfg.RetryAfter < 0 {
		return nil, errors.New("admission: negative bound")
	}
	if cfg.Burst == 0 {
		cfg.Burst = cfg.Rate
	}
	if cfg.RetryAfter == 0 {
		cfg.RetryAfter = time.Second
	}
	if cfg.Wait == 0 {
		cfg.Wait = time.Second
	}
	l := &Limiter{cfg: cfg, tokens: float64(cfg.Burst)}
	if cfg.MaxInFlight > 0 {
		l.slots = make(chan struct{}, cfg.MaxInFlight)
	}
	return l, nil
}

// Stats returns the Limiter's counts.
func (l *Limiter) Stats() Stats {
	return Stats{
		Admitted: l.admitted.Load(), Refused: l.refused.Load(), RefusedRate: l.refusedRate.Load(),
		InFlight: len(l.slots), Waiting: int(l.waiting.Load()),
	}
}

// Wrap returns next behind the Limiter: a request over a bound is
// answered 503 with Retry-After and a JSON error and never reaches next.
func (l *Limiter) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.take(time.Now()) {
			l.refuse(w, "too many connects per second", true)
			return
		}
		if l.slots == nil {
			l.admitted.Add(1)
			next.ServeHTTP(w, r)
			return
		}
		if !l.enter(r) {
			l.refuse(w, "too many connects at once", false)
			return
		}
		l.admitted.Add(1)
		aw := &admitWriter{ResponseWriter: w, l: l}
		defer aw.admitted()
		next.ServeHTTP(aw, r)
	})
}

// enter takes a place among the connects being admitted, waiting for one
// within MaxWaiting and Wait; it reports false when it got none.
func (l *Limiter) enter(r *http.Request) bool {
	select {
	case l.slots <- struct{}{}:
		return true
	default:
	}
	if l.waiting.Add(1) > int64(l.cfg.MaxWaiting) {
		l.waiting.Add(-1)
		return false
	}
	defer l.waiting.Add(-1)
	t := time.NewTimer(l.cfg.Wait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-r.Context().Done():
		return false
	}
}

// take spends a token of the rate's bucket, refilled at Rate per second
// up to Burst; it reports false when there is none.
func (l *Limiter) take(now time.Time) bool {
	if l.cfg.Rate <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() {
		l.tokens = min(float64(l.cfg.Burst), l.tokens+now.Sub(l.last).Seconds()*float64(l.cfg.Rate))
	}
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

func (l *Limiter) refuse(w http.ResponseWriter, why string, rate bool) {
	l.refused.Add(1)
	if rate {
		l.refusedRate.Add(1)
	}
	secs := max(int64(l.cfg.RetryAfter.Round(time.Second)/time.Second), 1)
	secs += rand.Int64N(secs + 1)
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	httpx.WriteError(w, http.StatusServiceUnavailable, fmt.Sprintf("%s on this node: retry after %d s", why, secs))
}

// admitWriter ends a connect's admission at the first sign that its
// handler is done admitting it: the response head (WriteHeader, Write,
// Flush) or the hijack of an HTTP/1.x stream, else the handler's return.
// Everything else reaches the ResponseWriter through Unwrap.
type admitWriter struct {
	http.ResponseWriter
	l    *Limiter
	done bool // only the handler's goroutine uses the writer
}

func (w *admitWriter) admitted() {
	if !w.done {
		w.done = true
		<-w.l.slots
	}
}

// WriteHeader ends the admission and writes the head.
func (w *admitWriter) WriteHeader(code int) {
	w.admitted()
	w.ResponseWriter.WriteHeader(code)
}

// Write ends the admission and writes b.
func (w *admitWriter) Write(b []byte) (int, error) {
	w.admitted()
	return w.ResponseWriter.Write(b)
}

// FlushError ends the admission and flushes (http.ResponseController's
// Flush).
func (w *admitWriter) FlushError() error {
	w.admitted()
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush ends the admission and flushes (http.Flusher).
func (w *admitWriter) Flush() { _ = w.FlushError() }

// Hijack ends the admission and takes over the connection.
func (w *admitWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.admitted()
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap returns the wrapped ResponseWriter (for
// http.ResponseController's other methods).
func (w *admitWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
