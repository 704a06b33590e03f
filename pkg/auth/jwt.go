package auth

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/pushd/pushd/pkg/hub"
)

// Supported JWT algorithms.
const (
	HS256 = "HS256"
	RS256 = "RS256"
)

// Token sources understood by JWTConfig.Sources.
const (
	// SourceBearer reads "Authorization: Bearer <token>".
	SourceBearer = "bearer"
	// SourceCookie reads a cookie: "cookie" (name DefaultTokenCookie) or
	// "cookie:NAME".
	SourceCookie = "cookie"
	// SourceQuery reads a query parameter: "query" (name
	// DefaultTokenQuery) or "query:NAME".
	SourceQuery = "query"
	// SourceHeader reads the raw token from a header: "header:NAME".
	SourceHeader = "header"

	// DefaultTokenCookie is the cookie "cookie" reads.
	DefaultTokenCookie = "pushd_token"
	// DefaultTokenQuery is the query parameter "query" reads.
	DefaultTokenQuery = "access_token"
	// RawTokenClaim as JWTConfig.AccessTokenClaim makes the whole token the
	// user's access token.
	RawTokenClaim = "-"
)

// maxTokenLen bounds the token we are willing to decode.
const maxTokenLen = 16 << 10

// JWTConfig configures NewJWT.
type JWTConfig struct {
	// Algorithm is HS256 or RS256, and tokens must name exactly it.
	// Default: HS256 when Secret is set, RS256 when a public key is.
	Algorithm string
	// Secret is the HS256 shared secret; at least 32 bytes (RFC 7518 §3.2).
	Secret string
	// PublicKeyPEM is the RS256 public key, PEM ("PUBLIC KEY", "RSA PUBLIC
	// KEY" or a "CERTIFICATE"), at least 2048 bits.
	PublicKeyPEM string
	// PublicKeyFile is read instead of PublicKeyPEM when that is empty.
	PublicKeyFile string

	// Sources lists where the token is looked for, in order; the first
	// source that has a token decides (a bad token there is not skipped).
	// Entries: "bearer", "cookie[:NAME]", "query[:NAME]", "header:NAME".
	// Default: bearer, cookie:pushd_token, query:access_token.
	Sources []string

	// Issuer, when set, must equal the "iss" claim.
	Issuer string
	// Audience, when set, must be the "aud" claim or one of its entries.
	Audience string
	// Leeway is the clock skew tolerated on exp and nbf. Default 0.
	Leeway time.Duration
	// AllowNoExpiry accepts tokens without an "exp" claim. Default false:
	// such tokens are rejected.
	AllowNoExpiry bool

	// UserClaim names the claim holding the user id. Default "sub".
	UserClaim string
	// TenantClaim names the tenant id claim. Default "tenant_id".
	TenantClaim string
	// NameClaim names the display-name claim. Default "name".
	NameClaim string
	// AccessTokenClaim names the claim used as the user's access token (the
	// addressing key of "send to access token"). Default "jti", so a
	// backend addresses one login session without pushd storing the
	// credential; OIDC setups may prefer "sid". RawTokenClaim ("-") uses the
	// whole token instead — it then appears in introspection output, so
	// only do that for short-lived tokens.
	AccessTokenClaim string

	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// JWT authenticates requests bearing a JSON Web Token (RFC 7519) signed
// with HS256 or RS256. Build it with NewJWT.
//
// The user's ID, TenantID, Name and AccessToken come from the configured
// claims (strings, or numbers rendered in decimal); every other claim is
// copied to User.Claims.
type JWT struct {
	alg     string
	secret  []byte
	pub     *rsa.PublicKey
	sources []tokenSource
	cfg     JWTConfig
}

type tokenSource struct{ kind, name string }

// NewJWT validates cfg and returns a JWT authenticator.
func NewJWT(cfg JWTConfig) (*JWT, error) {
	j := &JWT{cfg: cfg}
	if cfg.PublicKeyPEM == "" && cfg.PublicKeyFile != "" {
		b, err := os.ReadFile(cfg.PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("auth: jwt public key: %w", err)
		}
		cfg.PublicKeyPEM = string(b)
	}
	j.alg = cfg.Algorithm
	if j.alg == "" {
		switch {
		case cfg.Secret != "" && cfg.PublicKeyPEM == "":
			j.alg = HS256
		case cfg.PublicKeyPEM != "" && cfg.Secret == "":
			j.alg = RS256
		default:
			return nil, errors.New("auth: jwt: set Algorithm, or exactly one of Secret and a public key")
		}
	}
	switch j.alg {
	case HS256:
		if len(cfg.Secret) < 32 {
			return nil, errors.New("auth: jwt: HS256 secret must be at least 32 bytes")
		}
		j.secret = []byte(cfg.Secret)
	case RS256:
		pub, err := parseRSAPublicKey([]byte(cfg.PublicKeyPEM))
		if err != nil {
			return nil, fmt.Errorf("auth: jwt: %w", err)
		}
		j.pub = pub
	default:
		return nil, fmt.Errorf("auth: jwt: unsupported algorithm %q (HS256 or RS256)", j.alg)
	}

	sources := cfg.Sources
	if len(sources) == 0 {
		sources = []string{SourceBearer, SourceCookie, SourceQuery}
	}
	for _, s := range sources {
		kind, name, _ := strings.Cut(s, ":")
		switch kind {
		case SourceBearer:
		case SourceCookie:
			if name == "" {
				name = DefaultTokenCookie
			}
		case SourceQuery:
			if name == "" {
				name = DefaultTokenQuery
			}
		case SourceHeader:
			if name == "" {
				return nil, errors.New("auth: jwt: token source \"header\" needs a name (header:NAME)")
			}
		default:
			return nil, fmt.Errorf("auth: jwt: unknown token source %q", s)
		}
		j.sources = append(j.sources, tokenSource{kind, name})
	}

	setDefault(&cfg.UserClaim, "sub")
	setDefault(&cfg.TenantClaim, "tenant_id")
	setDefault(&cfg.NameClaim, "name")
	setDefault(&cfg.AccessTokenClaim, "jti")
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Leeway < 0 {
		return nil, errors.New("auth: jwt: negative Leeway")
	}
	j.cfg = cfg
	return j, nil
}

func setDefault(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

func parseRSAPublicKey(data []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block in public key")
	}
	var key any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		cert, err = x509.ParseCertificate(block.Bytes)
		if err == nil {
			key = cert.PublicKey
		}
	default:
		return nil, fmt.Errorf("unsupported PEM block %q", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	pub, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key is %T, not RSA", key)
	}
	if pub.N.BitLen() < 2048 {
		return nil, fmt.Errorf("RSA key has %d bits, need at least 2048", pub.N.BitLen())
	}
	return pub, nil
}

// Authenticate implements Authenticator.
func (j *JWT) Authenticate(r *http.Request) (hub.User, error) {
	token := j.token(r)
	if token == "" {
		return hub.User{}, unauthenticated("no token")
	}
	claims, err := j.Verify(token)
	if err != nil {
		return hub.User{}, err
	}
	return j.user(token, claims), nil
}

// token returns the token of the first source that has one.
func (j *JWT) token(r *http.Request) string {
	for _, s := range j.sources {
		var t string
		switch s.kind {
		case SourceBearer:
			scheme, rest, ok := strings.Cut(r.Header.Get("Authorization"), " ")
			if ok && strings.EqualFold(scheme, "Bearer") {
				t = strings.TrimSpace(rest)
			}
		case SourceCookie:
			if c, err := r.Cookie(s.name); err == nil {
				t = c.Value
			}
		case SourceQuery:
			t = r.URL.Query().Get(s.name)
		case SourceHeader:
			t = strings.TrimSpace(r.Header.Get(s.name))
		}
		if t != "" {
			return t
		}
	}
	return ""
}

// Verify checks a compact JWS token's algorithm, signature and time and
// audience claims, and returns its claims. Failures wrap
// ErrUnauthenticated. Numbers in the claims are json.Number.
func (j *JWT) Verify(token string) (map[string]any, error) {
	if len(token) > maxTokenLen {
		return nil, unauthenticated("token too long")
	}
	head, rest, ok1 := strings.Cut(token, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sig, ".") {
		return nil, unauthenticated("token malformed")
	}

	var header struct {
		Alg  string          `json:"alg"`
		Crit json.RawMessage `json:"crit"`
	}
	if err := decodeSegment(head, &header); err != nil {
		return nil, unauthenticated("token header malformed")
	}
	if header.Alg != j.alg {
		return nil, unauthenticated(fmt.Sprintf("token algorithm %q not accepted", header.Alg))
	}
	if header.Crit != nil {
		return nil, unauthenticated("token has unsupported critical headers")
	}

	signature, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil {
		return nil, unauthenticated("token signature malformed")
	}
	signed := token[:len(head)+1+len(payload)]
	if !j.checkSignature(signed, signature) {
		return nil, unauthenticated("signature invalid")
	}

	var claims map[string]any
	if err := decodeSegment(payload, &claims); err != nil || claims == nil {
		return nil, unauthenticated("token claims malformed")
	}
	if err := j.checkClaims(claims); err != nil {
		return nil, err
	}
	return claims, nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

func (j *JWT) checkSignature(signed string, sig []byte) bool {
	switch j.alg {
	case HS256:
		m := hmac.New(sha256.New, j.secret)
		m.Write([]byte(signed))
		return hmac.Equal(sig, m.Sum(nil))
	case RS256:
		sum := sha256.Sum256([]byte(signed))
		return rsa.VerifyPKCS1v15(j.pub, crypto.SHA256, sum[:], sig) == nil
	}
	return false
}

func (j *JWT) checkClaims(claims map[string]any) error {
	now := j.cfg.Now()
	leeway := j.cfg.Leeway
	exp, has, ok := numericDate(claims, "exp")
	switch {
	case !ok:
		return unauthenticated("token exp malformed")
	case !has && !j.cfg.AllowNoExpiry:
		return unauthenticated("token has no expiry")
	case has && !now.Before(exp.Add(leeway)):
		return unauthenticated("token expired")
	}
	nbf, has, ok := numericDate(claims, "nbf")
	switch {
	case !ok:
		return unauthenticated("token nbf malformed")
	case has && now.Add(leeway).Before(nbf):
		return unauthenticated("token not valid yet")
	}
	if j.cfg.Issuer != "" {
		if iss, _ := claims["iss"].(string); iss != j.cfg.Issuer {
			return unauthenticated("token issuer not accepted")
		}
	}
	if j.cfg.Audience != "" && !hasAudience(claims["aud"], j.cfg.Audience) {
		return unauthenticated("token audience not accepted")
	}
	return nil
}

// numericDate reads a NumericDate claim: has tells whether it is present,
// ok whether it is well-formed (absent counts as well-formed).
func numericDate(claims map[string]any, name string) (t time.Time, has, ok bool) {
	v, present := claims[name]
	if !present {
		return time.Time{}, false, true
	}
	n, isNum := v.(json.Number)
	if !isNum {
		return time.Time{}, true, false
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e12 {
		return time.Time{}, true, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, true
}

func hasAudience(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, v := range a {
			if s, ok := v.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

func (j *JWT) user(token string, claims map[string]any) hub.User {
	u := hub.User{
		ID:       claimString(claims, j.cfg.UserClaim),
		TenantID: claimString(claims, j.cfg.TenantClaim),
		Name:     claimString(claims, j.cfg.NameClaim),
	}
	mapped := map[string]bool{j.cfg.UserClaim: true, j.cfg.TenantClaim: true, j.cfg.NameClaim: true}
	if j.cfg.AccessTokenClaim == RawTokenClaim {
		u.AccessToken = token
	} else {
		u.AccessToken = claimString(claims, j.cfg.AccessTokenClaim)
		mapped[j.cfg.AccessTokenClaim] = true
	}
	for k, v := range claims {
		if mapped[k] {
			continue
		}
		if u.Claims == nil {
			u.Claims = make(map[string]any, len(claims))
		}
		u.Claims[k] = v
	}
	return u
}

// claimString renders a string or number claim; other types give "".
func claimString(claims map[string]any, name string) string {
	switch v := claims[name].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return ""
}
