package signature

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fuzzSecret signs the requests of the fuzz targets.
const fuzzSecret = "fuzz-secret"

// fuzzNow is the clock of the fuzz targets.
var fuzzNow = time.Unix(1_700_000_000, 0)

// newFuzzRequest makes the request a sender sends: method, target (path
// and query) and body; nil if net/http refuses them.
func newFuzzRequest(method, target string, body []byte) *http.Request {
	r, err := http.NewRequest(method, "http://backend.test"+target, bytes.NewReader(body))
	if err != nil || r.URL.Host != "backend.test" {
		return nil
	}
	return r
}

// received is the request r as a receiver sees it: written to the wire and
// read back by net/http; nil if it does not survive the trip.
func received(r *http.Request) *http.Request {
	var wire bytes.Buffer
	if err := r.Write(&wire); err != nil {
		return nil
	}
	got, err := http.ReadRequest(bufio.NewReader(&wire))
	if err != nil {
		return nil
	}
	return got
}

// verify runs VerifyRequest on r as a receiver with the fuzz clock, the
// replay cache rc and extra.
func verify(r *http.Request, rc *ReplayCache, extra []string) ([]byte, error) {
	return VerifyRequest(r, fuzzSecret, Options{Now: func() time.Time { return fuzzNow }, Replay: rc, MaxBody: 1 << 16}, extra...)
}

// FuzzVerifyRequest signs arbitrary requests (method, path and query,
// body, one extra value) with SignRequest and checks what VerifyRequest
// makes of them and of mutations: it never panics; the request as signed
// is accepted, with its body, once (a second time is ErrReplay); and the
// same request with one bit of its signature flipped, one byte of its body
// changed, a different extra value, or a timestamp one second off is
// refused. Run it longer with
//
//	go test -run x -fuzz FuzzVerifyRequest -fuzztime 60s ./pkg/signature/
func FuzzVerifyRequest(f *testing.F) {
	f.Add("POST", "/pushd/message/chat?x=1&connectionId=c1&a=b+c", []byte(`{"text":"hi"}`), "u1", uint16(0))
	f.Add("GET", "/", []byte{}, "", uint16(7))
	f.Add("post", "/a%2Fb/%zz?q=%e2%82%ac&&k", []byte("\x00\xff"), "t\u00e9", uint16(1000))
	f.Add("PUT", "/p?a=1&a=2&b", bytes.Repeat([]byte("x"), 300), "line", uint16(65535))
	f.Fuzz(func(t *testing.T, method, target string, body []byte, extra string, pos uint16) {
		if len(body) > 1<<16 {
			return
		}
		r := newFuzzRequest(method, target, body)
		if r == nil {
			return
		}
		extras := []string{extra}
		if err := SignRequest(r, fuzzSecret, BodySHA256(body), fuzzNow, extras...); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("SignRequest(%q %q): %v, not ErrInvalid", method, target, err)
			}
			return // a line feed in extra, a malformed query: nothing to send
		}
		in := received(r)
		if in == nil {
			return
		}
		// again returns a copy of the received request with the body b.
		again := func(b []byte) *http.Request {
			c := in.Clone(in.Context())
			c.Body = http.NoBody
			if b != nil {
				c.Body = nopCloser{bytes.NewReader(b)}
			}
			return c
		}
		rc := NewReplayCache(16)
		mustRefuse := func(what string, c *http.Request, ex []string) {
			t.Helper()
			if _, err := verify(c, NewReplayCache(16), ex); err == nil {
				t.Fatalf("%s %q: %s accepted", method, target, what)
			}
		}

		sig := r.Header.Get(HeaderSignature)
		raw, err := hex.DecodeString(strings.TrimPrefix(sig, Version))
		if err != nil || len(raw) == 0 {
			t.Fatalf("SignRequest wrote signature %q", sig)
		}
		flipped := bytes.Clone(raw)
		flipped[int(pos/8)%len(raw)] ^= 1 << (pos % 8)
		c := again(body)
		c.Header.Set(HeaderSignature, Version+hex.EncodeToString(flipped))
		mustRefuse("a signature with one bit flipped", c, extras)

		if len(body) > 0 {
			changed := bytes.Clone(body)
			changed[int(pos)%len(changed)] ^= byte(pos>>8) | 1
			mustRefuse("a changed body", again(changed), extras)
		}
		mustRefuse("another extra value", again(body), []string{extra + "x"})
		c = again(body)
		c.Header.Set(HeaderTimestamp, Timestamp(fuzzNow.Add(time.Second)))
		mustRefuse("a timestamp not signed", c, extras)

		got, err := verify(again(body), rc, extras)
		if err != nil {
			t.Fatalf("%q %q: the request as signed refused: %v", method, target, err)
		}
		if !bytes.Equal(got, body) {
			t.Fatalf("%q %q: body %q, want %q", method, target, got, body)
		}
		if _, err := verify(again(body), rc, extras); !errors.Is(err, ErrReplay) {
			t.Fatalf("%q %q: replayed request: %v, want ErrReplay", method, target, err)
		}
	})
}

// FuzzVerifyHeaders gives VerifyRequest arbitrary header values: it never
// panics, and it accepts only a signature equal to what Sign makes for the
// request with the secret, which the fuzzer cannot forge.
func FuzzVerifyHeaders(f *testing.F) {
	f.Add("POST", "/x?a=1", []byte("body"), "1700000000", "0123456789abcdef0123456789abcdef", BodySHA256([]byte("body")), "v2=00")
	f.Add("GET", "/", []byte{}, "-1", "short", "", "v1=zz")
	f.Add("GET", "/", []byte{}, "99999999999999999999", "nonce-nonce-nonce-1", "e3b0", "v2=")
	f.Fuzz(func(t *testing.T, method, target string, body []byte, ts, nonce, hash, sig string) {
		r := newFuzzRequest(method, target, body)
		if r == nil {
			return
		}
		if r = received(r); r == nil {
			return
		}
		for k, v := range map[string]string{HeaderTimestamp: ts, HeaderNonce: nonce, HeaderContentSHA256: hash, HeaderSignature: sig} {
			r.Header[k] = []string{v}
		}
		if _, err := verify(r, nil, nil); err != nil {
			return
		}
		want, err := Sign(fuzzSecret, Request{Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery,
			BodySHA256: hash, Timestamp: ts, Nonce: nonce})
		if err != nil || !strings.EqualFold(sig, want) {
			t.Fatalf("accepted signature %q for %q %q, Sign makes %q (%v)", sig, method, target, want, err)
		}
	})
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }
