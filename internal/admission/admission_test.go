package admission_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/admission"
	"github.com/pushd/pushd/internal/await"
)

// get requests url and returns the status, Retry-After and body; the body
// of a 200 is not read (a stream stays open until the test closes it).
func get(t *testing.T, url string) (*http.Response, int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	if resp.StatusCode == http.StatusOK {
		return resp, resp.StatusCode, ""
	}
	b, _ := io.ReadAll(resp.Body)
	return resp, resp.StatusCode, string(b)
}

// checkRefusal asserts a 503 with a Retry-After of 1 or 2 s (RetryAfter
// 1 s) and a JSON error naming why.
func checkRefusal(t *testing.T, resp *http.Response, status int, body, why string) {
	t.Helper()
	if status != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", status)
	}
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || secs < 1 || secs > 2 {
		t.Fatalf("Retry-After %q, want 1 or 2", resp.Header.Get("Retry-After"))
	}
	var e struct{ Error string }
	if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Error, why) {
		t.Fatalf("body %q, want a JSON error saying %q", body, why)
	}
}

// A connect holds its place from its arrival until its handler writes the
// response head or hijacks the connection: streams that are open do not
// count, connects still being admitted do, and one over the bound is
// refused without reaching the handler.
func TestInFlightBound(t *testing.T) {
	l, err := admission.New(admission.Config{MaxInFlight: 2})
	if err != nil {
		t.Fatal(err)
	}
	entered := make(chan string, 10)
	release := make(chan struct{})
	done := make(chan struct{})
	srv := httptest.NewServer(l.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mode := r.URL.Query().Get("mode")
		entered <- mode
		<-release // still admitting
		switch mode {
		case "hijack":
			nc, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.WriteString(nc, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
			go func() { <-done; _ = nc.Close() }()
			return
		default:
			w.WriteHeader(http.StatusOK)
			_ = http.NewResponseController(w).Flush()
			<-done // a stream served by its handler
		}
	})))
	defer srv.Close()
	defer close(done) // before srv.Close, which waits for the handlers

	type answer struct {
		resp   *http.Response
		status int
	}
	answers := make(chan answer, 2)
	for _, mode := range []string{"head", "hijack"} {
		go func() {
			resp, err := http.Get(srv.URL + "/?mode=" + mode)
			if err != nil {
				t.Error(err)
				answers <- answer{}
				return
			}
			answers <- answer{resp, resp.StatusCode}
		}()
	}
	<-entered
	<-entered
	if n := l.Stats().InFlight; n != 2 {
		t.Fatalf("in flight %d, want 2", n)
	}
	resp, status, body := get(t, srv.URL+"/?mode=refused")
	checkRefusal(t, resp, status, body, "at once")
	select {
	case m := <-entered:
		t.Fatalf("refused connect %q reached the handler", m)
	default:
	}

	close(release)
	for range 2 {
		a := <-answers
		if a.status != http.StatusOK {
			t.Fatalf("admitted connect: status %d", a.status)
		}
		defer a.resp.Body.Close()
	}
	// Both streams are open, neither is being admitted: there is room.
	if n := l.Stats().InFlight; n != 0 {
		t.Fatalf("in flight %d with both streams open, want 0", n)
	}
	for range 2 {
		_, status, _ := get(t, srv.URL+"/?mode=head")
		if status != http.StatusOK {
			t.Fatalf("connect after the streams opened: status %d", status)
		}
	}
	st := l.Stats()
	if st.Admitted != 4 || st.Refused != 1 || st.RefusedRate != 0 {
		t.Fatalf("stats %+v, want 4 admitted and 1 refused at once", st)
	}
}

// A handler that returns without writing (a refused or failed connect)
// frees its place too.
func TestReturnFreesPlace(t *testing.T) {
	l, err := admission.New(admission.Config{MaxInFlight: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(l.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	defer srv.Close()
	for i := range 3 {
		if _, status, body := get(t, srv.URL); status != http.StatusOK {
			t.Fatalf("request %d: status %d %s", i, status, body)
		}
	}
	if n := l.Stats().InFlight; n != 0 {
		t.Fatalf("in flight %d, want 0", n)
	}
}

// The rate lets Burst connects through at once, refuses the next, and
// lets one more through once the bucket has refilled.
func TestRateBound(t *testing.T) {
	l, err := admission.New(admission.Config{Rate: 1, Burst: 2})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(l.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})))
	defer srv.Close()
	start := time.Now()
	for i := range 2 {
		if _, status, _ := get(t, srv.URL); status != http.StatusNoContent {
			t.Fatalf("request %d of the burst: status %d", i, status)
		}
	}
	resp, status, body := get(t, srv.URL)
	if time.Since(start) >= time.Second {
		t.Skip("the burst took longer than a token takes to come back")
	}
	checkRefusal(t, resp, status, body, "per second")
	await.True(t, 5*time.Second, "a connect admitted once the bucket refilled", func() bool {
		_, status, _ := get(t, srv.URL)
		return status == http.StatusNoContent
	})
	if st := l.Stats(); st.Admitted != 3 || st.RefusedRate != st.Refused || st.Refused == 0 {
		t.Fatalf("stats %+v: want 3 admitted, every refusal the rate's", st)
	}
}

func TestNewRefusesNegative(t *testing.T) {
	for _, cfg := range []admission.Config{{MaxInFlight: -1}, {Rate: -1}, {Burst: -1}, {RetryAfter: -time.Second}} {
		if _, err := admission.New(cfg); err == nil {
			t.Errorf("New(%+v): no error", cfg)
		}
	}
}

// Flush through http.Flusher ends the admission like the
// ResponseController's.
func TestFlusherEndsAdmission(t *testing.T) {
	l, err := admission.New(admission.Config{MaxInFlight: 1})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	srv := httptest.NewServer(l.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.(http.Flusher).Flush()
		<-done
	})))
	defer srv.Close()
	defer close(done) // before srv.Close, which waits for the handlers
	if _, status, _ := get(t, srv.URL); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	if _, status, _ := get(t, srv.URL); status != http.StatusOK {
		t.Fatalf("second stream: status %d, the first one's flush did not end its admission", status)
	}
}

// Over MaxInFlight a connect waits for a place (within MaxWaiting and
// Wait) instead of being refused: it is admitted when the one ahead of it
// writes its head; one more than MaxWaiting is refused at once, and a
// waiter whose Wait runs out is refused then.
func TestWaitingForAPlace(t *testing.T) {
	l, err := admission.New(admission.Config{MaxInFlight: 1, MaxWaiting: 1, Wait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	srv := httptest.NewServer(l.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("hold") != "" {
			<-release
		}
		w.WriteHeader(http.StatusNoContent)
	})))
	defer srv.Close()
	statuses := make(chan int, 2)
	getStatus := func(url string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Error(err)
			statuses <- 0
			return
		}
		resp.Body.Close()
		statuses <- resp.StatusCode
	}
	go getStatus(srv.URL + "/?hold=1")
	await.True(t, 5*time.Second, "the first connect in flight", func() bool { return l.Stats().InFlight == 1 })
	go getStatus(srv.URL)
	await.True(t, 5*time.Second, "the second connect waiting", func() bool { return l.Stats().Waiting == 1 })
	resp, status, body := get(t, srv.URL)
	checkRefusal(t, resp, status, body, "at once")
	close(release)
	for range 2 {
		if s := <-statuses; s != http.StatusNoContent {
			t.Fatalf("held or waiting connect: status %d", s)
		}
	}

	short, err := admission.New(admission.Config{MaxInFlight: 1, MaxWaiting: 1, Wait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	srv2 := httptest.NewServer(short.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("hold") != "" {
			<-hold
		}
		w.WriteHeader(http.StatusNoContent)
	})))
	defer srv2.Close()
	defer close(hold) // before srv2.Close, which waits for the handlers
	go getStatus(srv2.URL + "/?hold=1")
	await.True(t, 5*time.Second, "the first connect in flight", func() bool { return short.Stats().InFlight == 1 })
	resp, status, body = get(t, srv2.URL)
	checkRefusal(t, resp, status, body, "at once")
	if st := short.Stats(); st.Waiting != 0 || st.Refused != 1 {
		t.Fatalf("stats %+v after the wait ran out, want none waiting and 1 refused", st)
	}
}
