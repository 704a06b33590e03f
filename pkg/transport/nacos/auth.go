package nacos

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Peer request and reply headers.
const (
	headerFrom      = "X-Pushd-From"
	headerTo        = "X-Pushd-To"
	headerTimestamp = "X-Pushd-Timestamp" // unix milliseconds
	headerNonce     = "X-Pushd-Nonce"
	headerSignature = "X-Pushd-Signature" // "v1=" + hex HMAC-SHA256
	signaturePrefix = "v1="
)

var (
	errUnsigned    = errors.New("missing authentication headers")
	errBadSig      = errors.New("bad signature")
	errStale       = errors.New("timestamp outside the replay window")
	errReplay      = errors.New("nonce already seen")
	errNonceFormat = errors.New("malformed nonce")
	errCacheFull   = errors.New("replay cache full")
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
// who sends it to whom, when, which operation and which body.
func (s *signer) requestMAC(method, path, from, to, ts, nonce string, body []byte) []byte {
	bodySum := sha256.Sum256(body)
	m := hmac.New(sha256.New, s.key)
	for _, part := range []string{"pushd-peer-request-v1", method, path, from, to, ts, nonce} {
		m.Write([]byte(part))
		m.Write([]byte{'\n'})
	}
	m.Write([]byte(hex.EncodeToString(bodySum[:])))
	return m.Sum(nil)
}

// replyMAC binds a reply to the request it answers (by its nonce).
func (s *signer) replyMAC(nonce, from string, status int, body []byte) []byte {
	bodySum := sha256.Sum256(body)
	m := hmac.New(sha256.New, s.key)
	for _, part := range []string{"pushd-peer-reply-v1", nonce, from, strconv.Itoa(status)} {
		m.Write([]byte(part))
		m.Write([]byte{'\n'})
	}
	m.Write([]byte(hex.EncodeToString(bodySum[:])))
	return m.Sum(nil)
}

// signRequest sets the authentication headers of a request to node to.
func (s *signer) signRequest(r *http.Request, from, to, nonce string, now time.Time, body []byte) {
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	r.Header.Set(headerFrom, from)
	r.Header.Set(headerTo, to)
	r.Header.Set(headerTimestamp, ts)
	r.Header.Set(headerNonce, nonce)
	if s != nil {
		r.Header.Set(headerSignature, signaturePrefix+hex.EncodeToString(s.requestMAC(r.Method, r.URL.Path, from, to, ts, nonce, body)))
	}
}

// verifyRequest checks the signature and the timestamp of r (not the
// nonce, see nonceCache) and returns the timestamp.
func (s *signer) verifyRequest(r *http.Request, body []byte, now time.Time, window time.Duration) (time.Time, error) {
	from, to := r.Header.Get(headerFrom), r.Header.Get(headerTo)
	tsText, nonce := r.Header.Get(headerTimestamp), r.Header.Get(headerNonce)
	if s == nil {
		return now, nil
	}
	sig := r.Header.Get(headerSignature)
	if from == "" || tsText == "" || nonce == "" || sig == "" {
		return time.Time{}, errUnsigned
	}
	if !validNonce(nonce) {
		return time.Time{}, errNonceFormat
	}
	got, err := hex.DecodeString(sig[min(len(sig), len(signaturePrefix)):])
	if err != nil || len(sig) < len(signaturePrefix) || sig[:len(signaturePrefix)] != signaturePrefix {
		return time.Time{}, errBadSig
	}
	if !hmac.Equal(got, s.requestMAC(r.Method, r.URL.Path, from, to, tsText, nonce, body)) {
		return time.Time{}, errBadSig
	}
	ms, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return time.Time{}, errStale
	}
	ts := time.UnixMilli(ms)
	if d := now.Sub(ts); d > window || d < -window {
		return time.Time{}, errStale
	}
	return ts, nil
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

// validNonce accepts 16 to 64 lower-case hex characters.
func validNonce(n string) bool {
	if len(n) < 16 || len(n) > 64 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// nonceCache remembers the nonces of accepted requests until their
// timestamp leaves the replay window, so each signed request is accepted at
// most once per node. It holds at most max entries.
type nonceCache struct {
	mu        sync.Mutex
	window    time.Duration
	max       int
	seen      map[string]time.Time // nonce → expiry (its timestamp + window)
	nextSweep time.Time
	lastSweep time.Time
}

func newNonceCache(window time.Duration, max int) *nonceCache {
	return &nonceCache{window: window, max: max, seen: make(map[string]time.Time)}
}

// add records nonce (timestamp ts); it fails if the nonce was already seen
// or the cache is full of live entries. A nonce is live while a request
// with its timestamp would still pass the window check.
func (c *nonceCache) add(nonce string, ts, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if exp, ok := c.seen[nonce]; ok && !now.After(exp) {
		return errReplay
	}
	full := len(c.seen) >= c.max
	if now.After(c.nextSweep) || (full && now.Sub(c.lastSweep) > 100*time.Millisecond) {
		for n, exp := range c.seen {
			if now.After(exp) {
				delete(c.seen, n)
			}
		}
		c.lastSweep = now
		c.nextSweep = now.Add(c.window / 4)
		full = len(c.seen) >= c.max
	}
	if full {
		return errCacheFull
	}
	c.seen[nonce] = ts.Add(c.window)
	return nil
}

func (c *nonceCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}
