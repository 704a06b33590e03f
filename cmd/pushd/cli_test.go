package main

import (
	"bytes"
	"cmp"
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
