package nacos

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/pushd/pushd/pkg/signature"
)

// Peer request and reply headers.
const (
	headerFrom       = "X-Pushd-From"
	headerTo         = "X-Pushd-To"
	headerTimestamp  = "X-Pushd-Timestamp" // unix milliseconds
	headerNonce      = signature.HeaderNonce
	headerBodySHA256 = signature.HeaderContentSHA256
	headerSignature  = "X-Pushd-Signature" // "v1=" + hex HMAC-SHA256
	signaturePrefix  = "v1="
)

var (
	errUnsigned    = errors.New("missing authentication headers")
	errBadSig      = errors.New("bad signature")
	errStale       = errors.New("timestamp outside the replay window")
	errBeforeStart = errors.New("signed before this node started")
	errNonceFormat = errors.New("malformed nonce")
	errBodyHash    = errors.New("body does not match its signed hash")
)

// signer computes and checks peer signatures. A nil *signer (insecure mode)
// signs nothing and accepts everything.
type signer struct {
	key []byte
}

func newSigner(secret string) *signer {
	if secret == "" {
		return nil
	}
	return &signer{key: []byte(secret)}
}

// requestMAC covers everything that makes a request unique and meaningful:
// who sends it to whom, when, which operation and which body (its length
// and hash, so that the headers can be checked before the body is read).
func (s *signer) requestMAC(method, path, from, to, ts, nonce string, length int64, bodySHA256 string) []byte {
	m := hmac.New(sha256.New, s.key)
	for _, part := range []string{"pushd-peer-request-v2", method, path, from, to, ts, nonce, strconv.FormatInt(length, 10)} {
		m.Write([]byte(part))
		m.Write([]byte{'\n'})
	}
	m.Write([]byte(bodySHA256))
	return m.Sum(nil)
}

// replyMAC binds a reply to the request it answers (by its nonce).
func (s *signer) replyMAC(nonce, from string, status int, body []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	for _, part := range []string{"pushd-peer-reply-v1", nonce, from, strconv.Itoa(status)} {
		m.Write([]byte(part))
		m.Write([]byte{'\n'})
	}
	m.Write([]byte(signature.BodySHA256(body)))
	return m.Sum(nil)
}

// signRequest sets the authentication headers of a request to node to.
func (s *signer) signRequest(r *http.Request, from, to, nonce string, now time.Time, body []byte) {
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	sum := signature.BodySHA256(body)
	r.Header.Set(headerFrom, from)
	r.Header.Set(headerTo, to)
	r.Header.Set(headerTimestamp, ts)
	r.Header.Set(headerNonce, nonce)
	r.Header.Set(headerBodySHA256, sum)
	if s != nil {
		r.Header.Set(headerSignature, signaturePrefix+hex.EncodeToString(s.requestMAC(r.Method, r.URL.Path, from, to, ts, nonce, int64(len(body)), sum)))
	}
}

// verifyRequest checks the headers of r before its body is read: the
// signature (over the declared Content-Length and body hash), the timestamp
// within window of now and not before notBefore. It returns the timestamp
// and the signed body hash, which the body must then match; the nonce is
// left to the replay cache.
func (s *signer) verifyRequest(r *http.Request, now, notBefore time.Time, window time.Duration) (time.Time, string, error) {
	from, to := r.Header.Get(headerFrom), r.Header.Get(headerTo)
	tsText, nonce, sum := r.Header.Get(headerTimestamp), r.Header.Get(headerNonce), r.Header.Get(headerBodySHA256)
	if s == nil {
		return now, "", nil
	}
	sig := r.Header.Get(headerSignature)
	if from == "" || tsText == "" || nonce == "" || sum == "" || sig == "" {
		return time.Time{}, "", errUnsigned
	}
	if !signature.ValidNonce(nonce) {
		return time.Time{}, "", errNonceFormat
	}
	got, err := hex.DecodeString(sig[min(len(sig), len(signaturePrefix)):])
	if err != nil || len(sig) < len(signaturePrefix) || sig[:len(signaturePrefix)] != signaturePrefix {
		return time.Time{}, "", errBadSig
	}
	if !hmac.Equal(got, s.requestMAC(r.Method, r.URL.Path, from, to, tsText, nonce, r.ContentLength, sum)) {
		return time.Time{}, "", errBadSig
	}
	ms, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return time.Time{}, "", errStale
	}
	ts := time.UnixMilli(ms)
	if d := now.Sub(ts); d > window || d < -window {
		return time.Time{}, "", errStale
	}
	if ts.Before(notBefore) {
		return time.Time{}, "", errBeforeStart
	}
	return ts, sum, nil
}

// signReply sets the signature header of a reply.
func (s *signer) signReply(h http.Header, nonce, from string, status int, body []byte) {
	if s == nil {
		return
	}
	h.Set(headerFrom, from)
	h.Set(headerSignature, signaturePrefix+hex.EncodeToString(s.replyMAC(nonce, from, status, body)))
}

// verifyReply checks a reply to the request with nonce, sent to node to.
func (s *signer) verifyReply(h http.Header, nonce, to string, status int, body []byte) error {
	if s == nil {
		return nil
	}
	sig := h.Get(headerSignature)
	if len(sig) < len(signaturePrefix) || sig[:len(signaturePrefix)] != signaturePrefix {
		return errUnsigned
	}
	got, err := hex.DecodeString(sig[len(signaturePrefix):])
	if err != nil || h.Get(headerFrom) != to || !hmac.Equal(got, s.replyMAC(nonce, to, status, body)) {
		return errBadSig
	}
	return nil
}
