package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"

	"github.com/rs/zerolog"

	"github.com/pushd/pushd/internal/testcert"
)

func leaf(t *testing.T, c *tls.Certificate) *x509.Certificate {
	t.Helper()
	cert, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestCertReloads: a rotated certificate is served without a restart; a
// broken rotation keeps the last good one.
func TestCertReloads(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := testcert.Write(t, dir)
	r, err := newCertReloader(certFile, keyFile, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	r.checkEvery = 0
	first, _ := r.GetCertificate(nil)
	firstSerial := leaf(t, first).SerialNumber

	testcert.Write(t, dir) // rotate: new files in place
	second, _ := r.GetCertificate(nil)
	if leaf(t, second).SerialNumber.Cmp(firstSerial) == 0 {
		t.Fatal("the rotated certificate was not loaded")
	}
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	third, err := r.GetCertificate(nil)
	if err != nil || third != second {
		t.Fatalf("a broken rotation replaced the certificate: %v", err)
	}
	if _, err := newCertReloader(certFile, keyFile, zerolog.Nop()); err == nil {
		t.Error("a broken pair was accepted at start")
	}
}

func TestTLSConfigNeedsBothFiles(t *testing.T) {
	file := writeConfig(t, "tls: {cert_file: a.pem}\napps: [{name: a, auth: {mode: demo}}]")
	if _, err := loadConfig(file, nil); err == nil {
		t.Error("tls.cert_file without key_file was accepted")
	}
}
