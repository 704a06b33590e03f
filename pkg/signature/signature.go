package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

const (
	// HeaderTimestamp carries the signing time in Unix seconds.
	HeaderTimestamp = "X-Pushd-Timestamp"
	// HeaderSignature carries "v1=" and the hex HMAC-SHA256.
	HeaderSignature = "X-Pushd-Signature"
	// Version is the prefix of the signature header's value.
	Version = "v1="
	// DefaultMaxSkew is a sensible replay window for Verify.
	DefaultMaxSkew = 5 * time.Minute
)

var (
	// ErrMissing is returned when the timestamp or signature header is absent.
	ErrMissing = errors.New("signature: missing timestamp or signature")
	// ErrInvalid is returned when the signature does not match.
	ErrInvalid = errors.New("signature: invalid")
	// ErrExpired is returned when the timestamp is outside the allowed skew.
	ErrExpired = errors.New("signature: timestamp outside the allowed window")
	// ErrNoSecret is returned by Verify when it is given an empty secret.
	ErrNoSecret = errors.New("signature: empty secret")
)

// Timestamp formats t as the value of HeaderTimestamp.
func Timestamp(t time.Time) string {
	return strconv.FormatInt(t.Unix(), 10)
}

// Sign returns the value of HeaderSignature ("v1=<hex>") for the given
// timestamp (as produced by Timestamp) and parts.
func Sign(secret, timestamp string, parts ...string) string {
	return Version + hex.EncodeToString(mac(secret, timestamp, parts))
}

func mac(secret, timestamp string, parts []string) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(timestamp))
	h.Write([]byte{'\n'})
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{'\n'})
	}
	return h.Sum(nil)
}

// Verify checks a signature made by Sign. now is the verifier's clock and
// maxSkew how far the timestamp may lie from it in either direction (zero →
// DefaultMaxSkew). It returns nil, or an error wrapping ErrMissing,
// ErrInvalid, ErrExpired or ErrNoSecret. The comparison is constant-time.
func Verify(secret, timestamp, sig string, now time.Time, maxSkew time.Duration, parts ...string) error {
	if secret == "" {
		return ErrNoSecret
	}
	if timestamp == "" || sig == "" {
		return ErrMissing
	}
	if maxSkew <= 0 {
		maxSkew = DefaultMaxSkew
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: malformed timestamp", ErrInvalid)
	}
	hexSig, ok := strings.CutPrefix(sig, Version)
	if !ok {
		return fmt.Errorf("%w: unknown version", ErrInvalid)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("%w: malformed hex", ErrInvalid)
	}
	if !hmac.Equal(got, mac(secret, timestamp, parts)) {
		return ErrInvalid
	}
	skew := now.Sub(time.Unix(sec, 0))
	if skew > maxSkew || skew < -maxSkew {
		return ErrExpired
	}
	return nil
}
