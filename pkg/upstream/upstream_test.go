package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/await"
	"github.com/pushd/pushd/pkg/signature"
)

const secret = "upstream-test-secret"

var testID = Identity{App: "demo", UserID: "u1", TenantID: "t1", ConnectionID: "c-verified"}

// seen is what the backend observed of one forwarded call.
type seen struct {
	Path, Query, ContentType string
	Header                   http.Header
	Body                     []byte
	Fields                   map[string]string
	Files                    map[string][]byte
	VerifyErr                error
	Identity                 Identity
}

// newBackend records each call on the channel and answers 201 with a JSON
// body, unless handler is given.
func newBackend(t *testing.T, handler http.HandlerFunc) (*httptest.Server, chan seen) {
	t.Helper()
	calls := make(chan seen, 10)
	if handler == nil {
		handler = func(w http.ResponseWriter, r *http.Request) {
			s := seen{Path: r.URL.Path, Query: r.URL.RawQuery, ContentType: r.Header.Get("Content-Type"), Header: r.Header.Clone()}
			s.Identity, s.VerifyErr = Verify(r, secret, signature.Options{})
			if strings.HasPrefix(s.ContentType, "multipart/form-data") {
				if err := r.ParseMultipartForm(1 << 20); err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				s.Fields, s.Files = map[string]string{}, map[string][]byte{}
				for k, v := range r.MultipartForm.Value {
					s.Fields[k] = v[0]
				}
				for k, fhs := range r.MultipartForm.File {
					f, _ := fhs[0].Open()
					s.Files[k+":"+fhs[0].Filename], _ = io.ReadAll(f)
					f.Close()
				}
			} else {
				s.Body, _ = io.ReadAll(r.Body)
			}
			calls <- s
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Header().Set("X-Backend-Internal", "secret")
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, `{"ok":true}`)
		}
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv, calls
}

// newFront serves Forward as the web layer would: /{kind}/{path}.
func newFront(t *testing.T, f *Forwarder, id Identity) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /connect/{kind}/{file}", func(w http.ResponseWriter, r *http.Request) {
		path, ok := strings.CutSuffix(r.PathValue("file"), ".do")
		if !ok {
			http.NotFound(w, r)
			return
		}
		f.Forward(w, r, r.PathValue("kind"), path, id)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func newForwarder(t *testing.T, cfg Config) *Forwarder {
	t.Helper()
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func decodeError(t *testing.T, resp *http.Response) string {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error content type = %q", ct)
	}
	var e struct{ Error string }
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Error == "" {
		t.Fatalf("error body not {\"error\":…}: %v", err)
	}
	return e.Error
}

func TestForwardMessage(t *testing.T) {
	backend, calls := newBackend(t, nil)
	front := newFront(t, newForwarder(t, Config{URL: backend.URL + "/hooks/", Secret: secret}), testID)

	req, _ := http.NewRequest(http.MethodPost, front.URL+"/connect/message/chat.do?connectionId=forged&room=7&room=8",
		strings.NewReader(`{"text":"hi"}`))
	req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	req.Header.Set("X-Pushd-User-Id", "admin") // a browser trying to pose as someone
	req.Header.Set("Cookie", "SESSION=browser-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated || string(body) != `{"ok":true}` ||
		resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("answer = %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if resp.Header.Get("X-Backend-Internal") != "" {
		t.Fatal("backend headers other than Content-Type leaked to the browser")
	}

	s := <-calls
	if s.Path != "/hooks/message/chat" {
		t.Fatalf("path = %q", s.Path)
	}
	if s.Query != "connectionId=c-verified&room=7&room=8" {
		t.Fatalf("query = %q", s.Query)
	}
	if s.ContentType != "application/json;charset=UTF-8" || string(s.Body) != `{"text":"hi"}` {
		t.Fatalf("content = %q %q", s.ContentType, s.Body)
	}
	if s.VerifyErr != nil || s.Identity != testID {
		t.Fatalf("Verify = %+v, %v", s.Identity, s.VerifyErr)
	}
	if got := s.Header.Get(HeaderUserID); got != "u1" {
		t.Fatalf("user header = %q (browser header must not pass)", got)
	}
	if s.Header.Get("Cookie") != "" {
		t.Fatal("browser cookies must not be forwarded")
	}
	if s.Header.Get("X-Forwarded-For") == "" {
		t.Fatal("no X-Forwarded-For")
	}
}

func TestForwardUploadMultipart(t *testing.T) {
	backend, calls := newBackend(t, nil)
	front := newFront(t, newForwarder(t, Config{URL: backend.URL, Secret: secret}), testID)

	file := bytes.Repeat([]byte("0123456789abcdef"), 40_000) // 640 KB, over any single buffer
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("title", "report")
	fw, _ := mw.CreateFormFile("file", "report.bin")
	fw.Write(file)
	mw.Close()

	resp, err := http.Post(front.URL+"/connect/upload/avatar.do?connectionId=x", mw.FormDataContentType(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	s := <-calls
	if s.Path != "/upload/avatar" || s.Fields["title"] != "report" || !bytes.Equal(s.Files["file:report.bin"], file) {
		t.Fatalf("backend got path %q fields %v files %d", s.Path, s.Fields, len(s.Files))
	}
	if s.VerifyErr != nil || s.Identity != testID {
		t.Fatalf("Verify = %+v, %v", s.Identity, s.VerifyErr)
	}
}

func TestForwardOversize(t *testing.T) {
	var backendCalls atomic.Int64
	backend, _ := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		backendCalls.Add(1)
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	})
	front := newFront(t, newForwarder(t, Config{URL: backend.URL, MaxBody: 1024}), testID)
	big := bytes.Repeat([]byte("x"), 4096)

	t.Run("declared length", func(t *testing.T) {
		resp, err := http.Post(front.URL+"/connect/message/big.do", "application/json", bytes.NewReader(big))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status = %d", resp.StatusCode)
		}
		decodeError(t, resp)
		if backendCalls.Load() != 0 {
			t.Fatal("backend called for a body declared too large")
		}
	})
	t.Run("chunked", func(t *testing.T) {
		// io.MultiReader hides the length, so the client sends chunks.
		resp, err := http.Post(front.URL+"/connect/upload/big.do", "application/octet-stream", io.MultiReader(bytes.NewReader(big)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status = %d", resp.StatusCode)
		}
		if msg := decodeError(t, resp); !strings.Contains(msg, "1024") {
			t.Fatalf("error = %q", msg)
		}
	})
	t.Run("exactly the limit", func(t *testing.T) {
		resp, err := http.Post(front.URL+"/connect/message/ok.do", "application/json", io.MultiReader(bytes.NewReader(big[:1024])))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d", resp.StatusCode)
		}
	})
}

func TestForwardBackendFailures(t *testing.T) {
	release := make(chan struct{})
	slow, _ := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	gone, _ := newBackend(t, func(http.ResponseWriter, *http.Request) {})
	gone.Close()
	failing, _ := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusTeapot)
		fmt.Fprint(w, "no coffee")
	})

	// Only the hanging backend gets a short timeout: the others answer (or
	// refuse) at once, and a loaded machine must not turn that into a 504.
	for _, tt := range []struct {
		name    string
		url     string
		timeout time.Duration
		status  int
	}{
		{"timeout", slow.URL, 100 * time.Millisecond, http.StatusGatewayTimeout},
		{"unreachable", gone.URL, 30 * time.Second, http.StatusBadGateway},
		{"backend status copied", failing.URL, 30 * time.Second, http.StatusTeapot},
	} {
		t.Run(tt.name, func(t *testing.T) {
			front := newFront(t, newForwarder(t, Config{URL: tt.url, Timeout: tt.timeout}), testID)
			resp, err := http.Post(front.URL+"/connect/message/x.do", "application/json", strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status >= 500 {
				decodeError(t, resp)
			} else if b, _ := io.ReadAll(resp.Body); string(b) != "no coffee" || resp.Header.Get("Content-Type") != "text/plain" {
				t.Fatalf("body = %q", b)
			}
		})
	}
}

func TestForwardRejectsPaths(t *testing.T) {
	backend, calls := newBackend(t, nil)
	f := newForwarder(t, Config{URL: backend.URL, Secret: secret})
	for _, p := range []string{"", ".", "..", "a/b", "../admin", `a\b`, "%2e%2e", "a%2Fb", "a b", "a?b", "a#b", "ä",
		"a\x00b", strings.Repeat("a", 201)} {
		r := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader("{}"))
		w := httptest.NewRecorder()
		f.Forward(w, r, KindMessage, p, testID)
		if w.Code != http.StatusBadRequest {
			t.Errorf("path %q: status %d, want 400", p, w.Code)
		}
	}
	for _, p := range []string{"chat", "a.b", "v1~x", "A-Z_09", strings.Repeat("a", 200)} {
		if !ValidPath(p) {
			t.Errorf("ValidPath(%q) = false", p)
		}
	}
	select {
	case s := <-calls:
		t.Fatalf("backend called for a rejected path: %q", s.Path)
	default:
	}

	w := httptest.NewRecorder()
	f.Forward(w, httptest.NewRequest(http.MethodPost, "/x", nil), "admin", "x", testID)
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("unknown kind: status %d", w.Code)
	}
	w = httptest.NewRecorder()
	f.Forward(w, httptest.NewRequest(http.MethodPost, "/x", nil), KindMessage, "x", Identity{App: "demo", UserID: "u\n1"})
	if w.Code != http.StatusBadRequest {
		t.Fatalf("newline in identity: status %d", w.Code)
	}
}

// Also through a real server, where the router decodes the URL first.
func TestForwardEncodedTraversal(t *testing.T) {
	backend, calls := newBackend(t, nil)
	front := newFront(t, newForwarder(t, Config{URL: backend.URL}), testID)
	for _, p := range []string{"%2e%2e.do", "..%2Fadmin.do", "a%2Fb.do", "%252e%252e.do"} {
		resp, err := http.Post(front.URL+"/connect/message/"+p, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d", p, resp.StatusCode)
		}
	}
	select {
	case s := <-calls:
		t.Fatalf("backend called: %q", s.Path)
	default:
	}
}

func TestForwardUnsigned(t *testing.T) {
	backend, calls := newBackend(t, nil)
	front := newFront(t, newForwarder(t, Config{URL: backend.URL}), Identity{App: "demo", UserID: "u1"})
	resp, err := http.Post(front.URL+"/connect/message/x.do?connectionId=forged", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	s := <-calls
	if s.Header.Get(HeaderSignature) != "" || s.Header.Get(HeaderUserID) != "u1" {
		t.Fatalf("headers = %v", s.Header)
	}
	if s.Query != "" {
		t.Fatalf("forged connectionId kept: %q", s.Query)
	}
	if !errors.Is(s.VerifyErr, signature.ErrMissing) {
		t.Fatalf("Verify err = %v", s.VerifyErr)
	}
}

// captured is a forwarded call as the backend received it.
type captured struct {
	method, path, query string
	header              http.Header
	body                []byte
}

// forwardAndCapture makes the browser call POST /connect/message/chat.do
// with body through a signing Forwarder and returns what the backend got.
func forwardAndCapture(t *testing.T, body string) captured {
	t.Helper()
	got := make(chan captured, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- captured{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone(), b}
	}))
	t.Cleanup(backend.Close)
	front := newFront(t, newForwarder(t, Config{URL: backend.URL + "/pushd", Secret: secret}), testID)
	resp, err := http.Post(front.URL+"/connect/message/chat.do?room=7", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("forward: status %d", resp.StatusCode)
	}
	return <-got
}

// verifyingBackend is a Go backend that checks every call with Verify and
// one replay cache; its clock runs offset ahead of the real one. It sends
// each Verify result on the returned channel.
func verifyingBackend(t *testing.T, offset *atomic.Int64) (*httptest.Server, chan error) {
	t.Helper()
	results := make(chan error, 1)
	replay := signature.NewReplayCache(0)
	opts := signature.Options{Replay: replay, Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := Verify(r, secret, opts)
		if err == nil && id != testID {
			err = fmt.Errorf("identity %+v", id)
		}
		results <- err
		if err != nil {
			http.Error(w, `{"error":"not from pushd"}`, http.StatusUnauthorized)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, results
}

// replay sends the captured headers again, with the given request line and
// body, and returns Verify's verdict.
func replay(t *testing.T, backend *httptest.Server, results chan error, c captured, method, path, query string, body []byte) error {
	t.Helper()
	target := backend.URL + path
	if query != "" {
		target += "?" + query
	}
	req, err := http.NewRequest(method, target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.header {
		if k != "Content-Length" && k != "Accept-Encoding" {
			req.Header[k] = v
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return <-results
}

// Attack (issue 10 #3): the signed headers of one forwarded call, captured
// at (or on the way to) the backend, are put on another call — another
// path, body, method or query, other identity headers — or sent again, or
// sent after the window. Verify refuses every one of them and accepts the
// genuine call once.
func TestVerifyRefusesReplayedCall(t *testing.T) {
	c := forwardAndCapture(t, `{"text":"hi"}`)
	if c.header.Get(HeaderNonce) == "" || c.header.Get(HeaderContentSHA256) != signature.BodySHA256(c.body) {
		t.Fatalf("forwarded headers lack nonce or body hash: %v", c.header)
	}
	var offset atomic.Int64
	backend, results := verifyingBackend(t, &offset)

	for _, tt := range []struct {
		name                string
		method, path, query string
		body                string
		edit                func(http.Header)
	}{
		{"other path", "POST", "/pushd/upload/chat", c.query, string(c.body), nil},
		{"other body", "POST", c.path, c.query, `{"text":"pay 1000 to mallory"}`, nil},
		{"other method", "PUT", c.path, c.query, string(c.body), nil},
		{"other query", "POST", c.path, "room=8&connectionId=c-verified", string(c.body), nil},
		{"other user", "POST", c.path, c.query, string(c.body), func(h http.Header) { h.Set(HeaderUserID, "admin") }},
		{"body hash header matching the other body", "POST", c.path, c.query, "{}", func(h http.Header) {
			h.Set(HeaderContentSHA256, signature.BodySHA256([]byte("{}")))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cc := c
			cc.header = c.header.Clone()
			if tt.edit != nil {
				tt.edit(cc.header)
			}
			if err := replay(t, backend, results, cc, tt.method, tt.path, tt.query, []byte(tt.body)); !errors.Is(err, signature.ErrInvalid) {
				t.Fatalf("Verify = %v, want ErrInvalid", err)
			}
		})
	}

	t.Run("after the window", func(t *testing.T) {
		offset.Store(int64(70 * time.Second))
		defer offset.Store(0)
		if err := replay(t, backend, results, c, "POST", c.path, c.query, c.body); !errors.Is(err, signature.ErrExpired) {
			t.Fatalf("Verify 70 s later = %v, want ErrExpired", err)
		}
	})
	t.Run("twice", func(t *testing.T) {
		if err := replay(t, backend, results, c, "POST", c.path, c.query, c.body); err != nil {
			t.Fatalf("genuine call refused: %v", err)
		}
		if err := replay(t, backend, results, c, "POST", c.path, c.query, c.body); !errors.Is(err, signature.ErrReplay) {
			t.Fatalf("Verify of the same call again = %v, want ErrReplay", err)
		}
	})
}

// A body over 64 KiB is spooled to a file while it is hashed, arrives
// intact and signed, and the file is gone once the call is answered.
func TestForwardSpoolsLargeBody(t *testing.T) {
	backend, calls := newBackend(t, nil)
	dir := t.TempDir()
	front := newFront(t, newForwarder(t, Config{URL: backend.URL, Secret: secret, SpoolDir: dir}), testID)
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	// io.MultiReader hides the length, so the client sends chunks.
	resp, err := http.Post(front.URL+"/connect/message/big.do", "application/octet-stream", io.MultiReader(bytes.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	s := <-calls
	if s.VerifyErr != nil || !bytes.Equal(s.Body, body) || s.Header.Get("Content-Length") != fmt.Sprint(len(body)) {
		t.Fatalf("backend got %d bytes (Content-Length %q), Verify %v", len(s.Body), s.Header.Get("Content-Length"), s.VerifyErr)
	}
	// The file is removed when Forward returns, which may be just after
	// the answer reached us.
	await.True(t, 5*time.Second, "spool file removed", func() bool {
		left, err := os.ReadDir(dir)
		return err == nil && len(left) == 0
	})
}

func TestNewValidation(t *testing.T) {
	for _, cfg := range []Config{{}, {URL: "backend:8080"}, {URL: "http://b/x?q=1"}, {URL: "http://b", Timeout: -1}, {URL: "http://b", MaxBody: -2}} {
		if _, err := New(cfg); err == nil || !strings.HasPrefix(err.Error(), "upstream: ") {
			t.Errorf("New(%+v) err = %v", cfg, err)
		}
	}
}
