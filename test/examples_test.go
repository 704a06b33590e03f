package test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/syncbuf"
	"github.com/pushd/pushd/pkg/signature"
)

// recipe is one of the verifiers in examples/, run as a process.
type recipe struct {
	lang string
	argv []string // the command line, without the port
}

var recipes = []recipe{
	{"java", []string{"java", "../examples/java/VerifyPushd.java"}},
	{"node", []string{"node", "../examples/node/verify-pushd.mjs"}},
	{"python", []string{"python3", "../examples/python/verify_pushd.py"}},
}

// runExample runs an example to completion and returns its exit code,
// stdout and stderr.
func runExample(t *testing.T, env []string, argv ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatalf("%v: %v", argv, err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// TestExamplesSelftest runs each recipe's --selftest: the known vector of
// pkg/signature/doc.go and a query with every kind of byte, without pushd.
func TestExamplesSelftest(t *testing.T) {
	for _, r := range recipes {
		t.Run(r.lang, func(t *testing.T) {
			requireTool(t, r.argv[0], "the "+r.lang+" recipe")
			code, out, errOut := runExample(t, nil, append(r.argv, "--selftest")...)
			if code != 0 || out != "selftest ok\n" {
				t.Errorf("--selftest: exit %d, %q %q", code, out, errOut)
			}
		})
	}
}

// portWriter keeps a process's output and sends the port of its first
// "listening PORT" line.
type portWriter struct {
	out  syncbuf.Buffer
	port chan int
	mu   sync.Mutex
	line []byte
}

func (w *portWriter) Write(p []byte) (int, error) {
	w.out.Write(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range p {
		if c != '\n' {
			w.line = append(w.line, c)
			continue
		}
		if rest, ok := strings.CutPrefix(string(w.line), "listening "); ok {
			if n, err := strconv.Atoi(rest); err == nil {
				select {
				case w.port <- n:
				default: // only the first counts
				}
			}
		}
		w.line = w.line[:0]
	}
	return len(p), nil
}

// startRecipe runs r on a free port with env and returns its base URL and
// output.
func startRecipe(t *testing.T, r recipe, env ...string) (string, *syncbuf.Buffer) {
	t.Helper()
	w := &portWriter{port: make(chan int, 1)}
	cmd := exec.Command(r.argv[0], append(r.argv[1:], "0")...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = w, &w.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("%s recipe output:\n%s", r.lang, w.out.String())
		}
	})
	select {
	case port := <-w.port:
		return fmt.Sprintf("http://127.0.0.1:%d", port), &w.out
	case err := <-exited:
		exited <- err // for the cleanup
		t.Fatalf("%s recipe exited (%v): %s", r.lang, err, w.out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("%s recipe not listening within 30s: %s", r.lang, w.out.String())
	}
	return "", nil
}

// exchange is one request pushd made to a recipe and the recipe's answer.
type exchange struct {
	uri    string
	header http.Header
	body   []byte
	status int
	answer string
}

// recorder sits between pushd and a recipe, forwarding each request
// unchanged and keeping it with its answer.
type recorder struct {
	url string
	mu  sync.Mutex
	log []exchange
}

func newRecorder(t *testing.T, target string) *recorder {
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ex := exchange{uri: r.RequestURI, header: r.Header.Clone(), body: body}
		if ex.status, ex.answer, err = post(target+r.RequestURI, r.Header, body); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		rec.mu.Lock()
		rec.log = append(rec.log, ex)
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(ex.status)
		_, _ = io.WriteString(w, ex.answer)
	}))
	t.Cleanup(srv.Close)
	rec.url = srv.URL
	return rec
}

// await waits for a request that match accepts and returns it.
func (rec *recorder) await(t *testing.T, what string, match func(exchange) bool) exchange {
	t.Helper()
	var found exchange
	waitFor(t, 10*time.Second, func() error {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, ex := range rec.log {
			if match(ex) {
				found = ex
				return nil
			}
		}
		return fmt.Errorf("no %s among %d requests", what, len(rec.log))
	})
	return found
}

// hook matches the presence hook of event for user.
func hook(event, user string) func(exchange) bool {
	return func(ex exchange) bool {
		return ex.header.Get("X-Pushd-Event") == event && strings.Contains(string(ex.body), `"userId":"`+user+`"`)
	}
}

// post sends body with header to url and returns the answer.
func post(url string, header http.Header, body []byte) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header = header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// verified checks that answer is a recipe's 200 {"verified":true,...} for
// body, with the fields want.
func verified(t *testing.T, what string, status int, answer string, body []byte, want map[string]any) {
	t.Helper()
	var got map[string]any
	if err := json.Unmarshal([]byte(answer), &got); status != 200 || err != nil {
		t.Errorf("%s: %d %s, want 200 with the recipe's verdict", what, status, answer)
		return
	}
	want["verified"], want["sha256"], want["bytes"] = true, sha256Hex(body), float64(len(body))
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s is %v, want %v (answer %s)", what, k, got[k], v, answer)
		}
	}
}

const (
	examplesUpstreamSecret = "examples-upstream-secret-0123456789"
	examplesHooksSecret    = "examples-hooks-secret-9876543210"
)

// TestExamplesVerify runs each recipe of examples/ as the backend of a
// real pushd: browser messages and uploads and presence hooks arrive
// signed and verified; captured and forged requests are refused.
func TestExamplesVerify(t *testing.T) {
	for _, r := range recipes {
		t.Run(r.lang, func(t *testing.T) {
			requireTool(t, r.argv[0], "the "+r.lang+" recipe")
			testRecipe(t, r)
		})
	}
}

func testRecipe(t *testing.T, r recipe) {
	target, out := startRecipe(t, r, "PUSHD_SECRET="+examplesUpstreamSecret, "PUSHD_HOOKS_SECRET="+examplesHooksSecret)
	rec := newRecorder(t, target)
	n := startPushd(t, fmt.Sprintf(`
apps:
  - name: demo
    auth: {mode: demo}
    api_keys: [demo-key]
    upstream: {url: %[1]s/pushd, secret: %[2]s}
    hooks: {url: %[1]s/pushd/events, secret: %[3]s, grace: 200ms}
`, rec.url, examplesUpstreamSecret, examplesHooksSecret))
	base := n.url + "/sse/demo/connect"
	s := openStream(t, base+"?userId=u1&tenantId=t1")
	connID := field(s.frame(), "id")

	online := rec.await(t, "online hook", hook("online", "u1"))
	verified(t, "online hook", online.status, online.answer, online.body, map[string]any{"event": "online"})

	// A query with bytes every encoder treats differently: the recipe must
	// canonicalise it as pushd does.
	query := "?connectionId=" + connID + "&userId=u1&tenantId=t1&note=" + url.QueryEscape("it's (ok)*! ~ é/ü")
	msg := []byte(`{"text":"hé \"there\""}`)
	code, answer := do(t, http.MethodPost, base+"/message/chat.do"+query, "application/json", bytes.NewReader(msg))
	verified(t, "message.do", code, answer, msg, map[string]any{"kind": "message", "path": "chat",
		"app": "demo", "userId": "u1", "tenantId": "t1", "connectionId": connID})

	var upload bytes.Buffer
	mw := multipart.NewWriter(&upload)
	fw, _ := mw.CreateFormFile("file", "avatar.bin")
	_, _ = fw.Write([]byte("\x00\x01\xffbinary\r\n--not-a-boundary\r\n"))
	_ = mw.WriteField("caption", "me")
	_ = mw.Close()
	code, answer = do(t, http.MethodPost, base+"/upload/avatar.do"+query, mw.FormDataContentType(), bytes.NewReader(upload.Bytes()))
	verified(t, "upload.do", code, answer, upload.Bytes(), map[string]any{"kind": "upload", "path": "avatar",
		"userId": "u1", "connectionId": connID})

	captured := rec.await(t, "forwarded message", func(ex exchange) bool { return strings.HasPrefix(ex.uri, "/pushd/message/chat?") })
	if !strings.Contains(captured.uri, "note=") {
		t.Errorf("pushd did not forward the query: %s", captured.uri)
	}
	testRecipeRefusals(t, target, captured, online)

	s.close()
	code, _ = do(t, http.MethodPost, base+"/disconnect.do", "application/x-www-form-urlencoded", strings.NewReader("connectionId="+connID))
	if code != 200 {
		t.Errorf("disconnect.do: %d", code)
	}
	offline := rec.await(t, "offline hook", hook("offline", "u1"))
	verified(t, "offline hook", offline.status, offline.answer, offline.body, map[string]any{"event": "offline"})

	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, ex := range rec.log {
		if ex.status != 200 {
			t.Errorf("the recipe refused a request of pushd: %s %d %s", ex.uri, ex.status, ex.answer)
		}
	}
	if got := strings.Count(out.String(), "verified "); got < len(rec.log) {
		t.Errorf("the recipe logged %d verified requests of %d", got, len(rec.log))
	}
}

// Attack (issue 13 §4): a request pushd signed, captured on its way to the
// backend, is replayed as it is, with another body, path, query, identity
// or endpoint; requests are forged outside the time window, with another
// secret or without a signature. Each recipe refuses every one with 401
// and the reason, and accepts the same construction signed properly.
func testRecipeRefusals(t *testing.T, target string, msg, online exchange) {
	otherPath := strings.Replace(msg.uri, "/message/chat?", "/message/admin?", 1)
	otherQuery := strings.Replace(msg.uri, "note=", "note=x", 1)
	withHeader := func(h http.Header, kv ...string) http.Header {
		h = h.Clone()
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				h.Del(kv[i])
			} else {
				h.Set(kv[i], kv[i+1])
			}
		}
		return h
	}
	for _, c := range []struct {
		name, uri string
		header    http.Header
		body      []byte
		want      string
	}{
		{"message replayed", msg.uri, msg.header, msg.body, "nonce already used"},
		{"hook replayed", online.uri, online.header, online.body, "nonce already used"},
		{"another body", msg.uri, msg.header, []byte(`{"text":"pay 1000"}`), "body does not match its hash"},
		{"another path", otherPath, msg.header, msg.body, "bad signature"},
		{"another query", otherQuery, msg.header, msg.body, "bad signature"},
		{"another user", msg.uri, withHeader(msg.header, "X-Pushd-User-Id", "admin"), msg.body, "bad signature"},
		{"another event", online.uri, withHeader(online.header, "X-Pushd-Event", "offline"), online.body, "bad signature"},
		{"message sent as a hook", online.uri, withHeader(msg.header, "X-Pushd-Event", "online"), msg.body, "bad signature"},
		{"no signature", msg.uri, withHeader(msg.header, "X-Pushd-Signature", ""), msg.body, "missing signature headers"},
	} {
		code, answer, err := post(target+c.uri, c.header, c.body)
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"error":"` + c.want + `"}`; code != 401 || compactJSON(answer) != want {
			t.Errorf("%s: %d %s, want 401 %s", c.name, code, answer, want)
		}
	}

	if code, answer := do(t, http.MethodGet, target+"/pushd/events", "", nil); code != 405 || compactJSON(answer) != `{"error":"method not allowed"}` {
		t.Errorf("GET: %d %s, want 405 with an error", code, answer)
	}

	// Fresh requests signed here: the control is accepted, so each refusal
	// is for the one thing that differs.
	identity := []string{"demo", "u1", "t1", "c1"}
	for _, c := range []struct {
		name   string
		secret string
		skew   time.Duration
		want   string
	}{
		{"signed now", examplesUpstreamSecret, 0, ""},
		{"signed 2 minutes ago", examplesUpstreamSecret, -2 * time.Minute, "timestamp outside window"},
		{"signed 2 minutes ahead", examplesUpstreamSecret, 2 * time.Minute, "timestamp outside window"},
		{"signed with another secret", "not-the-secret-not-the-secret-000", 0, "bad signature"},
		{"signed with the hooks secret", examplesHooksSecret, 0, "bad signature"},
	} {
		body := []byte(`{"text":"` + c.name + `"}`)
		req, _ := http.NewRequest(http.MethodPost, target+"/pushd/message/chat?b=2&a=1+1", bytes.NewReader(body))
		for k, v := range map[string]string{"X-Pushd-App": identity[0], "X-Pushd-User-Id": identity[1],
			"X-Pushd-Tenant-Id": identity[2], "X-Pushd-Connection-Id": identity[3], "Content-Type": "application/json"} {
			req.Header.Set(k, v)
		}
		if err := signature.SignRequest(req, c.secret, signature.BodySHA256(body), time.Now().Add(c.skew), identity...); err != nil {
			t.Fatal(err)
		}
		code, answer, err := post(req.URL.String(), req.Header, body)
		if err != nil {
			t.Fatal(err)
		}
		if c.want == "" {
			verified(t, c.name, code, answer, body, map[string]any{"kind": "message", "userId": "u1", "connectionId": "c1"})
		} else if want := `{"error":"` + c.want + `"}`; code != 401 || compactJSON(answer) != want {
			t.Errorf("%s: %d %s, want 401 %s", c.name, code, answer, want)
		}
	}
}

// compactJSON is s without insignificant space, or s when it is no JSON.
func compactJSON(s string) string {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		return s
	}
	return b.String()
}

// TestExamplesJavaSendByUserId sends with examples/java/SendByUserId.java
// through the server API to a user whose id needs JSON escaping, and sees
// the event on the user's stream; a wrong API key fails the run.
func TestExamplesJavaSendByUserId(t *testing.T) {
	requireTool(t, "java", "SendByUserId.java")
	n := startPushd(t, "")
	const user = `ann "7"`
	s := openStream(t, n.url+"/sse/demo/connect?userId="+url.QueryEscape(user))
	s.frame()
	const example = "../examples/java/SendByUserId.java"
	code, out, errOut := runExample(t, []string{"PUSHD_API_KEY=demo-key"}, "java", example, n.url, "demo", user, "myHrBell", `{"count": 100}`)
	if code != 0 || out != "delivered 1\n" {
		t.Errorf("SendByUserId: exit %d, %q %q", code, out, errOut)
	}
	if f := s.frame(); field(f, "event") != "myHrBell" || field(f, "data") != `{"count":100}` {
		t.Errorf("the stream got %q, want myHrBell with {\"count\":100}", f)
	}
	code, out, errOut = runExample(t, []string{"PUSHD_API_KEY=wrong-key"}, "java", example, n.url, "demo", user, "myHrBell", "1")
	if code != 1 || out != "" || !strings.HasPrefix(errOut, "pushd answered 401: ") {
		t.Errorf("SendByUserId with a wrong key: exit %d, %q %q", code, out, errOut)
	}
}
