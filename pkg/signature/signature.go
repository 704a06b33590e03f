package signature

import (
	"cmp"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	// HeaderTimestamp carries the signing time in Unix seconds.
	HeaderTimestamp = "X-Pushd-Timestamp"
	// HeaderNonce carries the request's random nonce.
	HeaderNonce = "X-Pushd-Nonce"
	// HeaderContentSHA256 carries the lower-case hex SHA-256 of the body.
	HeaderContentSHA256 = "X-Pushd-Content-Sha256"
	// HeaderSignature carries Version and the hex HMAC-SHA256.
	HeaderSignature = "X-Pushd-Signature"
	// Version is the prefix of the signature header's value.
	Version = "v2="
	// Tag is the first line of every canonical string.
	Tag = "pushd-v2"
	// DefaultWindow is how far a timestamp may lie from the verifier's
	// clock when Options.Window is zero.
	DefaultWindow = 60 * time.Second
	// DefaultMaxBody bounds the body VerifyRequest reads when
	// Options.MaxBody is zero: 10 MiB.
	DefaultMaxBody = 10 << 20
)

var (
	// ErrMissing is returned when a signature header is absent.
	ErrMissing = errors.New("signature: missing timestamp, nonce, content hash or signature")
	// ErrInvalid is returned when the signature, or the body's hash, does
	// not match, or a signed value is malformed.
	ErrInvalid = errors.New("signature: invalid")
	// ErrExpired is returned when the timestamp is outside the window.
	ErrExpired = errors.New("signature: timestamp outside the allowed window")
	// ErrNoSecret is returned when verifying with an empty secret.
	ErrNoSecret = errors.New("signature: empty secret")
	// ErrReplay is returned for a nonce the ReplayCache has seen.
	ErrReplay = errors.New("signature: nonce already seen")
	// ErrReplayCacheFull is returned while the ReplayCache is full of
	// unexpired nonces; the request may be retried later.
	ErrReplayCacheFull = errors.New("signature: replay cache full")
	// ErrTooLarge is returned by VerifyRequest for a body over MaxBody.
	ErrTooLarge = errors.New("signature: body too large")
)

// Request is what a signature covers; Canonical lays it out.
type Request struct {
	// Method is the HTTP method, e.g. "POST" (upper-cased when signed).
	Method string
	// Path is the URL path as sent on the request line, percent-encoded
	// (url.URL.EscapedPath).
	Path string
	// RawQuery is the query string without "?", as sent.
	RawQuery string
	// BodySHA256 is the lower-case hex SHA-256 of the body (BodySHA256).
	BodySHA256 string
	// Timestamp is the value of HeaderTimestamp.
	Timestamp string
	// Nonce is the value of HeaderNonce.
	Nonce string
	// Extra are the caller's further signed values, one line each (e.g.
	// the identity headers of package upstream). They must not contain a
	// line feed.
	Extra []string
}

// Canonical returns the string that is signed: Tag, the method, the path,
// the canonical query (CanonicalQuery), the body hash, the timestamp, the
// nonce and the Extra values, joined by "\n" (no final line feed). It fails
// for a malformed query or a value containing a line feed.
func (r Request) Canonical() (string, error) {
	query, err := CanonicalQuery(r.RawQuery)
	if err != nil {
		return "", err
	}
	lines := append([]string{Tag, strings.ToUpper(r.Method), r.Path, query, r.BodySHA256, r.Timestamp, r.Nonce}, r.Extra...)
	for _, l := range lines {
		if strings.ContainsAny(l, "\r\n") {
			return "", fmt.Errorf("%w: line break in a signed value", ErrInvalid)
		}
	}
	return strings.Join(lines, "\n"), nil
}

// CanonicalQuery normalises a raw query string: it splits it at "&"
// (dropping empty pieces), splits each piece at its first "=" (a piece
// without one has an empty value), decodes both halves as a form does
// ("+" is a space, %XX a byte), encodes them again with every byte
// outside A-Z a-z 0-9 - . _ ~ as %XX (upper-case hex), sorts the pairs by
// the encoded key keeping the original order of equal keys, and joins them
// as key=value with "&". A malformed %-escape is an error.
func CanonicalQuery(raw string) (string, error) {
	type pair struct{ k, v string }
	var pairs []pair
	for piece := range strings.SplitSeq(raw, "&") {
		if piece == "" {
			continue
		}
		k, v, _ := strings.Cut(piece, "=")
		dk, err1 := url.QueryUnescape(k)
		dv, err2 := url.QueryUnescape(v)
		if err := errors.Join(err1, err2); err != nil {
			return "", fmt.Errorf("%w: query: %w", ErrInvalid, err)
		}
		pairs = append(pairs, pair{encode(dk), encode(dv)})
	}
	slices.SortStableFunc(pairs, func(a, b pair) int { return strings.Compare(a.k, b.k) })
	var sb strings.Builder
	for i, p := range pairs {
		if i > 0 {
			sb.WriteByte('&')
		}
		sb.WriteString(p.k)
		sb.WriteByte('=')
		sb.WriteString(p.v)
	}
	return sb.String(), nil
}

// encode percent-encodes every byte of s but the unreserved ones of RFC 3986.
func encode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			sb.WriteByte(c)
			continue
		}
		sb.WriteByte('%')
		sb.WriteByte(hexDigits[c>>4])
		sb.WriteByte(hexDigits[c&15])
	}
	return sb.String()
}

// Sign returns the value of HeaderSignature for r: Version followed by the
// lower-case hex HMAC-SHA256, keyed with secret's bytes, of r.Canonical().
func Sign(secret string, r Request) (string, error) {
	mac, err := r.mac(secret)
	if err != nil {
		return "", err
	}
	return Version + hex.EncodeToString(mac), nil
}

func (r Request) mac(secret string) ([]byte, error) {
	msg, err := r.Canonical()
	if err != nil {
		return nil, err
	}
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(msg))
	return h.Sum(nil), nil
}

// Check reports whether sig (a HeaderSignature value) signs r with secret,
// comparing in constant time. It returns nil or an error wrapping
// ErrNoSecret, ErrMissing or ErrInvalid.
func Check(secret, sig string, r Request) error {
	if secret == "" {
		return ErrNoSecret
	}
	if sig == "" {
		return ErrMissing
	}
	hexSig, ok := strings.CutPrefix(sig, Version)
	if !ok {
		return fmt.Errorf("%w: unknown version", ErrInvalid)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("%w: malformed hex", ErrInvalid)
	}
	want, err := r.mac(secret)
	if err != nil {
		return err
	}
	if !hmac.Equal(got, want) {
		return ErrInvalid
	}
	return nil
}

// BodySHA256 returns the lower-case hex SHA-256 of body.
func BodySHA256(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// Timestamp formats t as the value of HeaderTimestamp.
func Timestamp(t time.Time) string {
	return strconv.FormatInt(t.Unix(), 10)
}

// NewNonce returns a fresh nonce: 32 lower-case hex characters of
// crypto/rand.
func NewNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}

// ValidNonce reports whether n is an acceptable nonce: 16 to 64 characters
// from 0-9 a-z A-Z - _.
func ValidNonce(n string) bool {
	if len(n) < 16 || len(n) > 64 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// SignRequest signs an outgoing request whose body hashes to bodySHA256
// (BodySHA256): it sets HeaderTimestamp (now), HeaderNonce (NewNonce),
// HeaderContentSHA256 and, over req's method, escaped path and raw query,
// the body hash, timestamp, nonce and extra, HeaderSignature.
func SignRequest(req *http.Request, secret, bodySHA256 string, now time.Time, extra ...string) error {
	path := req.URL.EscapedPath()
	if path == "" {
		path = "/" // what the request line carries
	}
	r := Request{Method: req.Method, Path: path, RawQuery: req.URL.RawQuery,
		BodySHA256: bodySHA256, Timestamp: Timestamp(now), Nonce: NewNonce(), Extra: extra}
	sig, err := Sign(secret, r)
	if err != nil {
		return err
	}
	req.Header.Set(HeaderTimestamp, r.Timestamp)
	req.Header.Set(HeaderNonce, r.Nonce)
	req.Header.Set(HeaderContentSHA256, r.BodySHA256)
	req.Header.Set(HeaderSignature, sig)
	return nil
}

// Options configure VerifyRequest.
type Options struct {
	// Window is how far the timestamp may lie from Now, either way.
	// Default DefaultWindow (60 s).
	Window time.Duration
	// Replay, when set, refuses a nonce it has already accepted; share one
	// cache between all the requests of a receiver. Default nil: no nonce
	// check, so a captured request can be replayed within Window.
	Replay *ReplayCache
	// MaxBody bounds the body VerifyRequest reads, in bytes. Default
	// DefaultMaxBody (10 MiB); -1 means unlimited.
	MaxBody int64
	// Now is the verifier's clock. Default time.Now.
	Now func() time.Time
}

// VerifyRequest checks an incoming signed request r and returns its body,
// leaving r.Body consumed. In this order: the signature over r's method,
// escaped path and raw query, HeaderContentSHA256, the timestamp, the nonce
// and extra; the timestamp against opts.Window; then, only if both passed,
// the body (at most opts.MaxBody bytes) against HeaderContentSHA256; last,
// with opts.Replay, that the nonce is new. Errors wrap ErrNoSecret,
// ErrMissing, ErrInvalid, ErrExpired, ErrTooLarge, ErrReplay or
// ErrReplayCacheFull, or the read error.
func VerifyRequest(r *http.Request, secret string, opts Options, extra ...string) ([]byte, error) {
	if secret == "" {
		return nil, ErrNoSecret
	}
	h := r.Header
	req := Request{Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery,
		BodySHA256: h.Get(HeaderContentSHA256), Timestamp: h.Get(HeaderTimestamp), Nonce: h.Get(HeaderNonce), Extra: extra}
	sig := h.Get(HeaderSignature)
	if req.Timestamp == "" || req.Nonce == "" || req.BodySHA256 == "" || sig == "" {
		return nil, ErrMissing
	}
	if !ValidNonce(req.Nonce) {
		return nil, fmt.Errorf("%w: malformed nonce", ErrInvalid)
	}
	if err := Check(secret, sig, req); err != nil {
		return nil, err
	}
	sec, err := strconv.ParseInt(req.Timestamp, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: malformed timestamp", ErrInvalid)
	}
	window := cmp.Or(opts.Window, DefaultWindow)
	now := time.Now()
	if opts.Now != nil {
		now = opts.Now()
	}
	ts := time.Unix(sec, 0)
	if d := now.Sub(ts); d > window || d < -window {
		return nil, ErrExpired
	}
	body, err := ReadBody(r.Body, cmp.Or(opts.MaxBody, DefaultMaxBody), req.BodySHA256)
	if err != nil {
		return nil, err
	}
	if opts.Replay != nil {
		if err := opts.Replay.Add(req.Nonce, ts.Add(window), now); err != nil {
			return nil, err
		}
	}
	return body, nil
}

// ReadBody reads body, at most limit bytes (-1: unlimited), and checks that
// it hashes to bodySHA256. It returns the body, or an error wrapping
// ErrTooLarge or ErrInvalid, or the read error.
func ReadBody(body io.Reader, limit int64, bodySHA256 string) ([]byte, error) {
	if body == nil {
		body = http.NoBody
	}
	if limit >= 0 {
		body = io.LimitReader(body, limit+1)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, fmt.Errorf("signature: read body: %w", err)
	}
	if limit >= 0 && int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	if BodySHA256(b) != bodySHA256 {
		return nil, fmt.Errorf("%w: body does not match its signed hash", ErrInvalid)
	}
	return b, nil
}
