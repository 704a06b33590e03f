package test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nginxServer is a real nginx load-balancing pushd nodes round-robin (no
// sticky sessions), over HTTP/1.1 and HTTP/2 (TLS).
type nginxServer struct {
	http1 string // http://127.0.0.1:port
	http2 string // https://127.0.0.1:port
	cmd   *exec.Cmd
}

func nginxPath(t testing.TB) string {
	for _, p := range []string{"/usr/sbin/nginx", "nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatal("nginx is not installed (scripts/test.sh installs it)")
	return ""
}

// startNginx proxies to the given pushd addresses with the SSE settings
// the README recommends.
func startNginx(t testing.TB, backends ...string) *nginxServer {
	t.Helper()
	dir := t.TempDir()
	writeSelfSignedCert(t, dir)
	p1, p2 := freePort(t), freePort(t)
	var servers strings.Builder
	for _, b := range backends {
		fmt.Fprintf(&servers, "    server %s max_fails=0;\n", b)
	}
	conf := nginxConfig(dir, servers.String(), fmt.Sprintf(`    listen 127.0.0.1:%[2]d;
    listen 127.0.0.1:%[3]d ssl http2;
    ssl_certificate %[1]s/cert.pem;
    ssl_certificate_key %[1]s/key.pem;
`, dir, p1, p2))
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	n := &nginxServer{http1: fmt.Sprintf("http://127.0.0.1:%d", p1), http2: fmt.Sprintf("https://127.0.0.1:%d", p2)}
	n.cmd = exec.Command(nginxPath(t), "-p", dir, "-c", confFile, "-g", "daemon off;")
	n.cmd.Stderr = os.Stderr
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// SIGTERM: nginx's master stops its workers; a SIGKILL left them running.
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		_ = n.cmd.Wait()
	})
	waitFor(t, 10*time.Second, func() error {
		resp, err := http.Get(n.http1 + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	return n
}

// h2Client speaks HTTP/2 over TLS to nginx, trusting its test certificate.
var h2Client = &http.Client{Transport: &http.Transport{
	TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the test's own certificate
	ForceAttemptHTTP2: true,
}}

func writeSelfSignedCert(t testing.TB, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	_ = os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
}

// nginxConfig is the configuration of an nginx in front of pushd nodes as
// an SSE deployment needs it (no buffering, long reads, keep-alive
// upstreams), its files under dir: upstreams are the upstream block's
// server lines, listen the server block's listen (and TLS) lines. Answers
// name the node in X-Upstream.
func nginxConfig(dir, upstreams, listen string) string {
	return fmt.Sprintf(`
worker_processes 1;
error_log %[1]s/error.log warn;
pid %[1]s/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi; uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
  upstream pushd {
%[2]s    keepalive 16;
  }
  server {
%[3]s    location / {
      proxy_pass http://pushd;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_buffering off;
      proxy_read_timeout 1h;
      proxy_next_upstream error timeout;
      proxy_connect_timeout 1s;
      add_header X-Upstream $upstream_addr always;
    }
  }
}
`, dir, upstreams, listen)
}
