package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// pushd runs the command line and returns the exit code and outputs.
func pushd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := dispatch(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestVersionAndHelp(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ := pushd(t, args...)
		if code != 0 || !strings.HasPrefix(out, "pushd 0.") {
			t.Errorf("%v: exit %d, %q", args, code, out)
		}
	}
	code, out, _ := pushd(t, "--help")
	for _, want := range []string{"serve", "version", "genconfig", "checkconfig", "gentoken", "health", "--config", "PUSHD_"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("--help (exit %d) does not name %q:\n%s", code, want, out)
		}
	}
}

func TestUnknownArgumentsAreErrors(t *testing.T) {
	for _, args := range [][]string{{"bogus"}, {"version", "extra"}, {"serve", "extra"}, {"--no-such-flag"}, {"checkconfig"}, {"genconfig", "--cluster", "zookeeper"}} {
		if code, _, errOut := pushd(t, args...); code != exitUsage || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q; want 2 with a message", args, code, errOut)
		}
	}
}

func TestGenconfigLoadsAndGentokenIsAccepted(t *testing.T) {
	for _, cluster := range []string{"", "redis", "nacos"} {
		args := []string{"genconfig"}
		if cluster != "" {
			args = append(args, "--cluster", cluster)
		}
		code, out, errOut := pushd(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d %s", args, code, errOut)
		}
		_, again, _ := pushd(t, args...)
		if again == out {
			t.Errorf("%v printed the same secrets twice", args)
		}
		file := filepath.Join(t.TempDir(), "pushd.yaml")
		if err := os.WriteFile(file, []byte(out), 0o600); err != nil {
			t.Fatal(err)
		}
		if code, out, errOut := pushd(t, "checkconfig", file); code != 0 || !strings.Contains(out, "ok") {
			t.Fatalf("checkconfig of genconfig %v: exit %d %s%s", args, code, out, errOut)
		}
		cfg, err := loadConfig(file, nil)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Log.Format != "auto" || !strings.Contains(out, "format: auto") {
			t.Errorf("genconfig writes log.format %q, want auto (JSON in a file, colours on a terminal)", cfg.Log.Format)
		}
		if cfg.Cluster.Transport != cmp.Or(cluster, "none") {
			t.Errorf("genconfig --cluster %q gave transport %q", cluster, cfg.Cluster.Transport)
		}
		code, token, errOut := pushd(t, "gentoken", "--config", file, "--user", "42", "--tenant", "acme", "--ttl", "5m")
		if code != 0 {
			t.Fatalf("gentoken: exit %d %s", code, errOut)
		}
		authn, err := (&server{cfg: cfg}).newAuth(cfg.Apps[0])
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodGet, "/sse/app/connect", nil)
		r.Header.Set("Authorization", "Bearer "+strings.TrimSpace(token))
		u, err := authn.Authenticate(r)
		if err != nil || u.ID != "42" || u.TenantID != "acme" {
			t.Fatalf("the app refused gentoken's token: %+v %v", u, err)
		}
		if !u.ExpiresAt.IsZero() && time.Until(u.ExpiresAt) > 6*time.Minute {
			t.Errorf("token expires at %v, want within --ttl 5m", u.ExpiresAt)
		}
	}
}

func TestCheckconfigReportsProblems(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(file, []byte("apps:\n  - name: a\n    auth: {mode: magic}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := pushd(t, "checkconfig", file)
	if code != exitUsage || !strings.Contains(errOut, "apps[0].auth.mode") {
		t.Errorf("checkconfig of a bad file: exit %d, %q", code, errOut)
	}
	if code, _, _ := pushd(t, "gentoken", "--config", file, "--user", "1"); code != exitUsage {
		t.Errorf("gentoken with a bad config: exit %d, want 2", code)
	}
}

func TestHealth(t *testing.T) {
	var ready atomic.Bool
	ready.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || !ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	if code, _, errOut := pushd(t, "health", srv.URL); code != 0 {
		t.Errorf("health of a ready server: exit %d %s", code, errOut)
	}
	ready.Store(false)
	if code, _, _ := pushd(t, "health", srv.URL); code != exitFailed {
		t.Errorf("health of an unready server: exit %d, want 1", code)
	}
}

// TestCheckconfigRefusesWhatServeRefuses: every file here is refused by
// serve's start (loadConfig, then newServer), and checkconfig says so
// with the key, exit 2 — it used to say ok for most of them.
func TestCheckconfigRefusesWhatServeRefuses(t *testing.T) {
	const app = "\napps:\n  - name: a\n    auth: {mode: demo}\n"
	const secret = `"0123456789abcdef0123456789abcdef"`
	cases := []struct {
		name, yaml, key string
		serve           bool // newServer is tried too (it contacts nothing for these)
	}{
		{"missing cert file", "tls: {cert_file: /nonexistent/c.pem, key_file: /nonexistent/k.pem}" + app, "tls", true},
		{"qos redis url", "qos: {repository: redis, redis_url: notaurl}" + app, "qos.redis_url", true},
		{"cluster redis url", "cluster: {transport: redis, redis_url: \"http://x\"}" + app, "cluster", true},
		{"history redis url", "history: {store: redis, redis_url: notaurl}\napps:\n  - name: a\n    auth: {mode: demo}\n    user_history: {size: 5}\n", "history.redis_url", true},
		{"nacos short secret", "cluster: {transport: nacos, secret: short, peers: [\"n2@127.0.0.1:1\"]}" + app, "cluster", true},
		{"nacos bad peer", "cluster: {transport: nacos, secret: " + secret + ", peers: [\"nonsense\"]}" + app, "cluster.peers", true},
		{"nacos bad server", "cluster: {transport: nacos, secret: " + secret + ", nacos: {servers: [\"nohostport\"]}}" + app, "cluster.nacos.servers[0]", true},
		{"nacos bad peer_listen", "cluster: {transport: nacos, secret: " + secret + ", peer_listen: \"7946\", peers: [\"n2@127.0.0.1:1\"]}" + app, "cluster.peer_listen", false},
		{"jwt short secret", "apps:\n  - name: a\n    auth: {mode: jwt, jwt: {secret: short}}\n", "apps[0].auth.jwt.secret", true},
		{"jwt no key", "apps:\n  - name: a\n    auth: {mode: jwt, jwt: {issuer: me}}\n", "apps[0].auth.jwt:", true},
		{"jwt bad source", "apps:\n  - name: a\n    auth: {mode: jwt, jwt: {secret: " + secret + ", sources: [header]}}\n", "apps[0].auth.jwt.sources", true},
		{"jwt public key file", "apps:\n  - name: a\n    auth: {mode: jwt, jwt: {public_key_file: /nonexistent/k.pem}}\n", "apps[0].auth.jwt.public_key_file", true},
		{"upstream url", "apps:\n  - name: a\n    auth: {mode: demo}\n    upstream: {url: \"::bad\", secret: " + secret + "}\n", "apps[0].upstream", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := writeConfig(t, c.yaml)
			code, out, errOut := pushd(t, "checkconfig", file)
			if code != exitUsage || !strings.Contains(errOut, "config: "+c.key) {
				t.Errorf("checkconfig: exit %d, stdout %q, stderr %q; want 2 naming %s", code, out, errOut, c.key)
			}
			if !c.serve {
				return
			}
			cfg, err := loadConfig(file, nil)
			if err == nil {
				var s *server
				if s, err = newServer(cfg, devNull(t)); err == nil {
					s.closeParts()
				}
			}
			if err == nil {
				t.Errorf("serve accepts the file that checkconfig refuses")
			}
		})
	}
}

func devNull(t *testing.T) *os.File {
	t.Helper()
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestCheckconfigReportsEveryProblem: the loader's problems and those of
// the parts come in one pass, JWT settings named by their YAML keys.
func TestCheckconfigReportsEveryProblem(t *testing.T) {
	file := writeConfig(t, `
tls: {cert_file: /nonexistent/c.pem, key_file: /nonexistent/k.pem}
qos: {repository: redis, redis_url: notaurl}
apps:
  - name: a
    heartbeat: fast
    auth: {mode: jwt, jwt: {issuer: me}}
  - name: b
    auth: {mode: jwt, jwt: {jwks_url: "ftp://keys"}}
`)
	code, _, errOut := pushd(t, "checkconfig", file)
	if code != exitUsage {
		t.Errorf("exit %d, want 2", code)
	}
	for _, want := range []string{
		`apps[0].heartbeat: "fast" is not a duration`,
		"config: tls:",
		"config: qos.redis_url:",
		"config: apps[0].auth.jwt: set algorithm, or exactly one of secret, public_key_pem (or public_key_file) and jwks_url",
		`config: apps[1].auth.jwt.jwks_url: jwks_url "ftp://keys" is not an absolute http(s) URL`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr does not have %q:\n%s", want, errOut)
		}
	}
	for _, goName := range []string{"Algorithm", "Secret", "JWKSURL"} {
		if strings.Contains(errOut, goName) {
			t.Errorf("stderr names the Go field %s:\n%s", goName, errOut)
		}
	}
}

// TestCheckconfigContactsNothing: the Redis of the QoS store, of the
// transport and the Nacos servers all point at a listener of the test,
// which no connection reaches while checkconfig checks the file.
func TestCheckconfigContactsNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	addr := ln.Addr().String()
	for _, cluster := range []string{
		`{transport: redis, redis_url: "redis://` + addr + `/0"}`,
		`{transport: nacos, secret: "0123456789abcdef0123456789abcdef", peer_listen: "` + addr + `", nacos: {servers: ["` + addr + `"]}}`,
	} {
		file := writeConfig(t, "qos: {repository: redis, redis_url: \"redis://"+addr+"/0\"}\ncluster: "+cluster+
			"\napps:\n  - name: a\n    auth: {mode: demo}\n    api_keys: [k]\n")
		if code, out, errOut := pushd(t, "checkconfig", file); code != 0 || !strings.Contains(out, "ok") {
			t.Errorf("checkconfig: exit %d %s%s", code, out, errOut)
		}
	}
	ln.Close()
	if n := accepted.Load(); n != 0 {
		t.Errorf("checkconfig opened %d connections", n)
	}
}

func TestUnknownEnvironmentVariablesAreWarned(t *testing.T) {
	got := unknownEnv([]string{"PUSHD_LISTEN=:1", "PUSHD_LISTNE=:2", "PUSHD_APPS_3_AUTH_MOD=jwt", "PUSHD_APPS_0_AUTH_MODE=jwt",
		"PUSHD_API_KEY=k", "PUSHD_REDIS_URL=redis://x", "PUSHD_APPS_1_CHANNELS_NAMESPACES_2_JOIN=public",
		"PUSHD_QOS_TTL=1h", "PUSHD_ZZZZZZZZZZZZ=1", "HOME=/root"})
	want := []string{
		"PUSHD_LISTNE names no configuration key, it is ignored (did you mean PUSHD_LISTEN?)",
		"PUSHD_APPS_3_AUTH_MOD names no configuration key, it is ignored (did you mean PUSHD_APPS_3_AUTH_MODE?)",
		"PUSHD_ZZZZZZZZZZZZ names no configuration key, it is ignored",
	}
	if len(got) != len(want) {
		t.Fatalf("warnings %q, want %d", got, len(want))
	}
	for i := range want {
		if !strings.HasSuffix(got[i], want[i]) {
			t.Errorf("warning %q, want it to end %q", got[i], want[i])
		}
	}
	t.Setenv("PUSHD_LOG_LEVLE", "debug")
	file := writeConfig(t, "apps:\n  - name: a\n    auth: {mode: demo}\n    api_keys: [k]\n")
	if code, _, errOut := pushd(t, "checkconfig", file); code != 0 || !strings.Contains(errOut, "warning: environment variable PUSHD_LOG_LEVLE") ||
		!strings.Contains(errOut, "PUSHD_LOG_LEVEL?") {
		t.Errorf("checkconfig with PUSHD_LOG_LEVLE: exit %d, stderr %q", code, errOut)
	}
	// serve logs the same warning at start.
	if b := startLog(t, file, []string{"PUSHD_LOG_LEVLE=debug"}); !strings.Contains(string(b), `"level":"warn"`) || !strings.Contains(string(b), "PUSHD_LOG_LEVLE") {
		t.Errorf("no warning at start in the log: %s", b)
	}
}

// TestLogLinesNameTheNodeWithoutNodeID: without node_id the node is named by
// its host name in every log line, the first ones included (they were once
// written before the default was set, with "node":"").
func TestLogLinesNameTheNodeWithoutNodeID(t *testing.T) {
	b := startLog(t, writeConfig(t, "apps:\n  - name: a\n    auth: {mode: demo}\n"), nil)
	host, _ := os.Hostname()
	want := cmp.Or(host, "pushd")
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, l := range lines {
		var line struct{ Node string }
		if err := json.Unmarshal([]byte(l), &line); err != nil || line.Node != want {
			t.Errorf("log line %q: node %q, want %q (%v)", l, line.Node, want, err)
		}
	}
	if len(lines) == 0 || lines[0] == "" {
		t.Fatal("no log line: the app without API keys should be warned about")
	}
}

// startLog builds the server of the config file with env as serve does,
// without running it, and returns what it logged meanwhile.
func startLog(t *testing.T, file string, env []string) []byte {
	t.Helper()
	cfg, err := loadConfig(file, env)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	s, err := newServer(cfg, f)
	if err != nil {
		t.Fatal(err)
	}
	s.closeParts()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return b
}
