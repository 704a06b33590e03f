package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// certReloader serves a certificate from files and loads them again when
// they change (a rotated certificate), without a restart. A broken new
// pair is logged and the old one kept.
type certReloader struct {
	certFile, keyFile string
	log               zerolog.Logger
	checkEvery        time.Duration

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string // modification times and sizes of both files
	checked time.Time
}

// newCertReloader loads the pair once; an error means it cannot serve.
func newCertReloader(certFile, keyFile string, log zerolog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log, checkEvery: time.Second}
	stamp, err := r.fileStamp()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("config: tls: %w", err)
	}
	r.cert, r.stamp, r.checked = &cert, stamp, time.Now()
	return r, nil
}

func (r *certReloader) fileStamp() (string, error) {
	var stamp string
	for _, f := range []string{r.certFile, r.keyFile} {
		st, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("config: tls: %w", err)
		}
		stamp += fmt.Sprintf("%d/%d;", st.ModTime().UnixNano(), st.Size())
	}
	return stamp, nil
}

// GetCertificate implements tls.Config.GetCertificate. It looks at the
// files at most once per checkEvery.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= r.checkEvery {
		r.checked = now
		if stamp, err := r.fileStamp(); err == nil && stamp != r.stamp {
			cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
			if err != nil {
				r.log.Warn().Err(err).Msg("tls: the changed certificate files do not load; serving the previous certificate")
			} else {
				r.cert, r.stamp = &cert, stamp
				r.log.Info().Str("cert_file", r.certFile).Msg("tls: certificate reloaded")
			}
		}
	}
	return r.cert, nil
}

// tlsConfig is the server's TLS configuration: HTTP/2 and HTTP/1.1 by
// ALPN, TLS 1.2 or later, the certificate from r.
func tlsConfig(r *certReloader) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: r.GetCertificate,
	}
}
