package signature

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// vector is the request of the known vector, computed independently with
// Python's hmac, hashlib and urllib.parse (see doc.go for the recipe).
var vector = Request{
	Method:     "POST",
	Path:       "/pushd/message/chat",
	RawQuery:   "x=1&connectionId=c1&a=b+c",
	BodySHA256: BodySHA256([]byte(`{"text":"hi"}`)),
	Timestamp:  "1700000000",
	Nonce:      "0123456789abcdef0123456789abcdef",
	Extra:      []string{"demo", "u1", "t1", "c1"},
}

const (
	vectorBodySHA256 = "e7b995efa755c5ff3b84d2188b58cb4ae916a59470eb3761df8a814f11763500"
	vectorSignature  = "v2=9070d8dc9e6fb12fa456dec81f1795c41b6a776b654d9263ea1b6188af3b998e"
)

func TestKnownVector(t *testing.T) {
	if vector.BodySHA256 != vectorBodySHA256 {
		t.Fatalf("BodySHA256 = %s", vector.BodySHA256)
	}
	canon, err := vector.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	want := "pushd-v2\nPOST\n/pushd/message/chat\na=b%20c&connectionId=c1&x=1\n" + vectorBodySHA256 +
		"\n1700000000\n0123456789abcdef0123456789abcdef\ndemo\nu1\nt1\nc1"
	if canon != want {
		t.Fatalf("Canonical =\n%q\nwant\n%q", canon, want)
	}
	if got, err := Sign("secret", vector); err != nil || got != vectorSignature {
		t.Fatalf("Sign = %s, %v; want %s", got, err, vectorSignature)
	}
}

func TestCanonicalQuery(t *testing.T) {
	for _, tt := range []struct{ raw, want string }{
		{"", ""},
		{"b=2&a=1", "a=1&b=2"},
		{"a=2&a=1&b", "a=2&a=1&b="}, // equal keys keep their order
		{"&&a=1&", "a=1"},
		{"q=a+b%2Bc&%7Ex=%e2%82%ac", "q=a%20b%2Bc&~x=%E2%82%AC"},
		{"k=a=b", "k=a%3Db"},
		{"x=%2F%3f;", "x=%2F%3F%3B"},
		// The same case as the Node example's self-test (examples/node).
		{"z=it's+(ok)*!~&b=%FF&a=caf%C3%A9&a=1&&flag&=v&k=x%3Dy/", "=v&a=caf%C3%A9&a=1&b=%FF&flag=&k=x%3Dy%2F&z=it%27s%20%28ok%29%2A%21~"},
	} {
		got, err := CanonicalQuery(tt.raw)
		if err != nil || got != tt.want {
			t.Errorf("CanonicalQuery(%q) = %q, %v; want %q", tt.raw, got, err, tt.want)
		}
	}
	if _, err := CanonicalQuery("a=%zz"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("malformed escape: %v", err)
	}
}

func TestCheckCoversEveryPart(t *testing.T) {
	sig, err := Sign("secret", vector)
	if err != nil {
		t.Fatal(err)
	}
	change := map[string]func(r *Request){
		"method":       func(r *Request) { r.Method = "PUT" },
		"path":         func(r *Request) { r.Path = "/pushd/upload/chat" },
		"query":        func(r *Request) { r.RawQuery = "x=2&connectionId=c1&a=b+c" },
		"body":         func(r *Request) { r.BodySHA256 = BodySHA256([]byte(`{"text":"ho"}`)) },
		"timestamp":    func(r *Request) { r.Timestamp = "1700000001" },
		"nonce":        func(r *Request) { r.Nonce = "0123456789abcdef0123456789abcdee" },
		"extra":        func(r *Request) { r.Extra = []string{"demo", "u2", "t1", "c1"} },
		"shifted":      func(r *Request) { r.Extra = []string{"demo", "u1", "t1c1", ""} },
		"fewer extras": func(r *Request) { r.Extra = []string{"demo", "u1", "t1"} },
	}
	for name, fn := range change {
		r := vector
		fn(&r)
		if err := Check("secret", sig, r); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s changed: Check = %v, want ErrInvalid", name, err)
		}
	}
	// The query's order and encoding do not matter, only its meaning.
	r := vector
	r.RawQuery = "connectionId=c1&a=b%20c&x=1"
	if err := Check("secret", sig, r); err != nil {
		t.Fatalf("reordered query: %v", err)
	}
	for _, tt := range []struct {
		secret, sig string
		want        error
	}{
		{"other", sig, ErrInvalid},
		{"", sig, ErrNoSecret},
		{"secret", "", ErrMissing},
		{"secret", "v1=" + sig[3:], ErrInvalid},
		{"secret", "v2=zz", ErrInvalid},
	} {
		if err := Check(tt.secret, tt.sig, vector); !errors.Is(err, tt.want) {
			t.Errorf("Check(%q, %q) = %v, want %v", tt.secret, tt.sig, err, tt.want)
		}
	}
	bad := vector
	bad.Extra = []string{"demo\nu1"}
	if _, err := Sign("secret", bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("line feed in a value: %v", err)
	}
}

func TestVerifyRequest(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	sum := BodySHA256([]byte("body"))
	signed := func() *http.Request {
		r := httptest.NewRequest("POST", "http://backend/hooks?a=1", strings.NewReader("body"))
		if err := SignRequest(r, "secret", sum, now, "x"); err != nil {
			t.Fatal(err)
		}
		return r
	}
	opts := Options{Now: func() time.Time { return now }}
	if got, err := VerifyRequest(signed(), "secret", opts, "x"); err != nil || string(got) != "body" {
		t.Fatalf("VerifyRequest = %q, %v", got, err)
	}
	for _, tt := range []struct {
		name string
		edit func(r *http.Request)
		at   time.Duration
		want error
	}{
		{"late", nil, 61 * time.Second, ErrExpired},
		{"early", nil, -61 * time.Second, ErrExpired},
		{"no nonce", func(r *http.Request) { r.Header.Del(HeaderNonce) }, 0, ErrMissing},
		{"no hash", func(r *http.Request) { r.Header.Del(HeaderContentSHA256) }, 0, ErrMissing},
		{"bad nonce", func(r *http.Request) { r.Header.Set(HeaderNonce, "short") }, 0, ErrInvalid},
		{"other hash", func(r *http.Request) { r.Header.Set(HeaderContentSHA256, BodySHA256(nil)) }, 0, ErrInvalid},
		{"other method", func(r *http.Request) { r.Method = "PUT" }, 0, ErrInvalid},
		{"other body", func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader("bodY")) }, 0, ErrInvalid},
		{"bad timestamp", func(r *http.Request) { r.Header.Set(HeaderTimestamp, "x") }, 0, ErrInvalid},
	} {
		r := signed()
		if tt.edit != nil {
			tt.edit(r)
		}
		o := opts
		o.Now = func() time.Time { return now.Add(tt.at) }
		if _, err := VerifyRequest(r, "secret", o, "x"); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := VerifyRequest(signed(), "secret", opts, "y"); !errors.Is(err, ErrInvalid) {
		t.Errorf("other extra: %v", err)
	}
}

func TestReadBody(t *testing.T) {
	sum := BodySHA256([]byte("hello"))
	if b, err := ReadBody(strings.NewReader("hello"), 5, sum); err != nil || string(b) != "hello" {
		t.Fatalf("ReadBody = %q, %v", b, err)
	}
	if _, err := ReadBody(strings.NewReader("hello"), 4, sum); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	if _, err := ReadBody(strings.NewReader("hellO"), -1, sum); !errors.Is(err, ErrInvalid) {
		t.Fatalf("other body: %v", err)
	}
}

func TestReplayCache(t *testing.T) {
	c := NewReplayCache(2)
	now := time.Now()
	exp := now.Add(time.Second)
	if err := c.Add("a", exp, now); err != nil {
		t.Fatal(err)
	}
	if err := c.Add("a", exp, now.Add(time.Second)); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	if err := c.Add("b", exp, now); err != nil {
		t.Fatal(err)
	}
	if err := c.Add("c", exp, now.Add(200*time.Millisecond)); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("full: %v", err)
	}
	// Once "a" and "b" expired they are forgotten and room is made.
	later := now.Add(1100 * time.Millisecond)
	if err := c.Add("c", later.Add(time.Second), later); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if c.Len() != 1 {
		t.Fatalf("cache holds %d entries, want 1", c.Len())
	}
}

func TestReplayCacheStaysNearLiveSize(t *testing.T) {
	c := NewReplayCache(0)
	now := time.Now()
	for i := range 100_000 {
		at := now.Add(time.Duration(i) * time.Millisecond)
		if err := c.Add(fmt.Sprint(i), at.Add(time.Second), at); err != nil {
			t.Fatal(err)
		}
	}
	// 1 000 nonces are live at any moment.
	if n := c.Len(); n > 4*minSweep {
		t.Fatalf("cache holds %d entries for 1000 live ones", n)
	}
}

func TestReplayCacheConcurrent(t *testing.T) {
	c := NewReplayCache(0)
	now := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for range 8 {
		wg.Go(func() {
			for i := range 500 {
				if c.Add(fmt.Sprint(i), now.Add(time.Minute), now) == nil {
					mu.Lock()
					accepted++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if accepted != 500 {
		t.Fatalf("%d nonces accepted, want each of the 500 once", accepted)
	}
}
