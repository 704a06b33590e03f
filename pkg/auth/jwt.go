package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushd/pushd/pkg/hub"
)

// Supported JWT algorithms.
const (
	HS256 = "HS256"
	RS256 = "RS256"
	ES256 = "ES256"
	EdDSA = "EdDSA"
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
	// Algorithm is HS256, RS256, ES256 or EdDSA, and tokens must name
	// exactly it. Default: HS256 when Secret is set, the algorithm of the
	// key when a public key is (RS256 for RSA, ES256 for EC P-256, EdDSA
	// for Ed25519), and with JWKSURL every one of RS256, ES256 and EdDSA,
	// each only with keys of its type.
	Algorithm string
	// Secret is the HS256 shared secret; at least 32 bytes (RFC 7518 §3.2).
	Secret string
	// PublicKeyPEM is the public key, PEM ("PUBLIC KEY", "RSA PUBLIC KEY"
	// or a "CERTIFICATE"): RSA of at least 2048 bits, EC P-256 or Ed25519.
	PublicKeyPEM string
	// PublicKeyFile is read instead of PublicKeyPEM when that is empty.
	PublicKeyFile string
	// JWKSURL is the http(s) URL of the identity provider's JSON Web Key
	// Set (RFC 7517), used instead of Secret and a public key: a token's
	// "kid" header selects the key (a token without kid is tried with
	// every key), and a key verifies only the algorithm of its type (and
	// of its "alg" member). The set is fetched from exactly this URL
	// (redirects are not followed), on the first token rather than at
	// NewJWT, so an unreachable provider does not stop the server: until
	// a first fetch succeeds, tokens fail with ErrUnavailable. Afterwards
	// it is fetched again by the first token after JWKSRefresh, and by a
	// token naming an unknown kid — both at most once per JWKSRetry — and
	// a failing fetch keeps the last good set. Prefer https: the set
	// decides who can sign tokens.
	JWKSURL string
	// JWKSRefresh is the age after which the key set is fetched again.
	// Default DefaultJWKSRefresh (1 h).
	JWKSRefresh time.Duration
	// JWKSTimeout bounds one key set fetch. Default DefaultJWKSTimeout
	// (5 s).
	JWKSTimeout time.Duration

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
	// AllowAnonymous accepts tokens whose user claim is absent or empty,
	// as users without an id. Default false: such tokens are rejected
	// ("token names no user"). A user claim that is neither a string nor
	// a number is rejected either way.
	AllowAnonymous bool

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
	// ChannelsClaim names the claim listing the channels the identity
	// grants (hub.User.Channels): an array of names or patterns, or one
	// string of them separated by spaces. Default "channels".
	ChannelsClaim string

	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// JWT authenticates requests bearing a JSON Web Token (RFC 7519) signed
// with HS256, RS256, ES256 or EdDSA, verified by github.com/golang-jwt/jwt.
// Build it with NewJWT.
//
// The user's ID, TenantID, Name and AccessToken come from the configured
// claims (strings, or numbers rendered in decimal), ExpiresAt from "exp"
// plus Leeway; every other claim is copied to User.Claims.
type JWT struct {
	algs    []string   // the algorithms tokens may name
	key     *verifyKey // the configured key, or nil with jwks
	jwks    *jwks
	parser  *jwt.Parser
	sources []tokenSource
	cfg     JWTConfig
}

type tokenSource struct{ kind, name string }

// ConfigError is a JWTConfig that NewJWT refuses. Its text names the
// JWTConfig fields by their Go names (Secret, JWKSURL, "a public key" for
// PublicKeyPEM or PublicKeyFile), so that a program that reads the
// configuration from a file can name its own keys instead.
type ConfigError struct {
	// Field is the JWTConfig field to change, or "" when the problem is
	// about several fields, each named in Err's text.
	Field string
	// Err says what is wrong.
	Err error
}

// Error implements error: "auth: jwt: " and the problem.
func (e *ConfigError) Error() string { return "auth: jwt: " + e.Err.Error() }

// Unwrap returns the problem.
func (e *ConfigError) Unwrap() error { return e.Err }

// configErr is a ConfigError about field.
func configErr(field, format string, args ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
}

// NewJWT validates cfg and returns a JWT authenticator.
func NewJWT(cfg JWTConfig) (*JWT, error) {
	j := &JWT{}
	if cfg.PublicKeyPEM == "" && cfg.PublicKeyFile != "" {
		b, err := os.ReadFile(cfg.PublicKeyFile)
		if err != nil {
			return nil, configErr("PublicKeyFile", "public key: %w", err)
		}
		cfg.PublicKeyPEM = string(b)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := j.setKeys(&cfg); err != nil {
		return nil, err
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
				return nil, configErr("Sources", "token source \"header\" needs a name (header:NAME)")
			}
		default:
			return nil, configErr("Sources", "unknown token source %q", s)
		}
		j.sources = append(j.sources, tokenSource{kind, name})
	}

	setDefault(&cfg.UserClaim, "sub")
	setDefault(&cfg.TenantClaim, "tenant_id")
	setDefault(&cfg.NameClaim, "name")
	setDefault(&cfg.AccessTokenClaim, "jti")
	setDefault(&cfg.ChannelsClaim, "channels")
	if cfg.Leeway < 0 {
		return nil, configErr("Leeway", "negative Leeway")
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(j.algs),
		jwt.WithJSONNumber(),
		jwt.WithStrictDecoding(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
	}
	if !cfg.AllowNoExpiry {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	j.parser = jwt.NewParser(opts...)
	j.cfg = cfg
	return j, nil
}

// asymmetric lists the algorithms of public keys.
var asymmetric = []string{RS256, ES256, EdDSA}

// setKeys picks the algorithm and the key (or key set) from cfg.
func (j *JWT) setKeys(cfg *JWTConfig) error {
	hasSecret, hasPEM, hasJWKS := cfg.Secret != "", cfg.PublicKeyPEM != "", cfg.JWKSURL != ""
	alg := cfg.Algorithm
	switch {
	case alg == "" && hasSecret && !hasPEM && !hasJWKS:
		alg = HS256
	case alg == "" && (hasSecret || hasPEM == hasJWKS):
		return configErr("", "set Algorithm, or exactly one of Secret, a public key and JWKSURL")
	case alg != "" && alg != HS256 && !slices.Contains(asymmetric, alg):
		return configErr("Algorithm", "unsupported algorithm %q (HS256, RS256, ES256 or EdDSA)", alg)
	}

	switch {
	case alg == HS256:
		if len(cfg.Secret) < 32 {
			return configErr("Secret", "HS256 Secret must be at least 32 bytes")
		}
		j.key = &verifyKey{alg: HS256, key: []byte(cfg.Secret)}
	case hasPEM && hasJWKS:
		return configErr("", "set a public key or JWKSURL, not both")
	case hasPEM:
		k, err := parsePublicKey([]byte(cfg.PublicKeyPEM))
		if err != nil {
			field := "PublicKeyPEM"
			if cfg.PublicKeyFile != "" {
				field = "PublicKeyFile"
			}
			return &ConfigError{Field: field, Err: err}
		}
		if alg != "" && alg != k.alg {
			return configErr("Algorithm", "Algorithm %s does not fit the public key, which is for %s", alg, k.alg)
		}
		alg, j.key = k.alg, &k
	case hasJWKS:
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return configErr("JWKSURL", "JWKSURL %q is not an absolute http(s) URL", cfg.JWKSURL)
		}
		if cfg.JWKSRefresh == 0 {
			cfg.JWKSRefresh = DefaultJWKSRefresh
		}
		if cfg.JWKSTimeout == 0 {
			cfg.JWKSTimeout = DefaultJWKSTimeout
		}
		if cfg.JWKSRefresh < 0 || cfg.JWKSTimeout < 0 {
			return configErr("", "negative JWKSRefresh or JWKSTimeout")
		}
		j.jwks = newJWKS(cfg.JWKSURL, cfg.JWKSRefresh, cfg.JWKSTimeout, cfg.Now)
	default:
		return configErr("", "%s needs a public key or JWKSURL", alg)
	}
	if alg == "" {
		j.algs = asymmetric
	} else {
		j.algs = []string{alg}
	}
	return nil
}

func setDefault(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

// Authenticate implements Authenticator.
func (j *JWT) Authenticate(r *http.Request) (hub.User, error) {
	token := j.token(r)
	if token == "" {
		return hub.User{}, unauthenticated("no token")
	}
	claims, err := j.Verify(r.Context(), token)
	if err != nil {
		return hub.User{}, err
	}
	return j.user(token, claims)
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

// Verify checks a compact JWS token's algorithm, key, signature and time,
// issuer and audience claims, and returns its claims. Failures wrap
// ErrUnauthenticated, or ErrUnavailable when the key set could not be
// fetched. Numbers in the claims are json.Number.
func (j *JWT) Verify(ctx context.Context, token string) (map[string]any, error) {
	if len(token) > maxTokenLen {
		return nil, unauthenticated("token too long")
	}
	claims := jwt.MapClaims{}
	t, err := j.parser.ParseWithClaims(token, claims, j.keyfunc(ctx))
	if err != nil {
		return nil, j.failure(t, claims, err)
	}
	return claims, nil
}

// keyfunc returns the keys a token's signature may be checked with: the
// configured key, or the set's keys of the token's kid, and only those
// for the token's algorithm (which the parser already found accepted).
func (j *JWT) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			return nil, unauthenticated("token has unsupported critical headers")
		}
		if j.key != nil {
			return j.key.key, nil
		}
		kid, ok := t.Header["kid"].(string)
		if _, present := t.Header["kid"]; present && !ok {
			return nil, unauthenticated("token header malformed")
		}
		keys, err := j.jwks.keys(ctx, kid)
		if err != nil {
			return nil, err
		}
		var set jwt.VerificationKeySet
		for _, k := range keys {
			if k.alg == t.Method.Alg() {
				set.Keys = append(set.Keys, k.key)
			}
		}
		switch {
		case len(keys) == 0:
			return nil, unauthenticated("token key unknown")
		case len(set.Keys) == 0:
			return nil, unauthenticated(fmt.Sprintf("token algorithm %q does not fit its key", t.Method.Alg()))
		}
		return set, nil
	}
}

// failure turns a parser error into the error Verify returns, with the
// reason of the first check that failed; a failure it cannot name is
// still a refusal.
func (j *JWT) failure(t *jwt.Token, claims jwt.MapClaims, err error) error {
	var e *Error
	switch {
	case errors.As(err, &e): // from keyfunc
		return e
	case errors.Is(err, ErrUnavailable):
		return err
	case errors.Is(err, jwt.ErrTokenMalformed):
		return unauthenticated(malformedReason(t))
	}
	alg, ok := t.Header["alg"].(string)
	switch {
	case !ok:
		return unauthenticated("token header malformed")
	case !slices.Contains(j.algs, alg):
		return unauthenticated(fmt.Sprintf("token algorithm %q not accepted", alg))
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return unauthenticated("signature invalid")
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return unauthenticated(j.claimsReason(claims, err))
	}
	return unauthenticated("token invalid")
}

// malformedReason names the part of a token the parser could not decode,
// from how far it got: it fills the header, then the claims and method,
// then the signature.
func malformedReason(t *jwt.Token) string {
	switch {
	case t == nil:
		return "token malformed"
	case t.Header == nil:
		return "token header malformed"
	case t.Method == nil:
		return "token claims malformed"
	}
	return "token signature malformed"
}

// claimsReason names the first failed claim check, in the order exp, nbf,
// iss, aud.
func (j *JWT) claimsReason(c jwt.MapClaims, err error) string {
	exp, expErr := c.GetExpirationTime()
	_, nbfErr := c.GetNotBefore()
	iss, issErr := c.GetIssuer()
	switch {
	case expErr != nil:
		return "token exp malformed"
	case exp == nil && !j.cfg.AllowNoExpiry:
		return "token has no expiry"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case nbfErr != nil:
		return "token nbf malformed"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token not valid yet"
	case j.cfg.Issuer != "" && (issErr != nil || iss != j.cfg.Issuer):
		return "token issuer not accepted"
	}
	return "token audience not accepted"
}

func (j *JWT) user(token string, claims map[string]any) (u hub.User, err error) {
	id, ok := claimString(claims, j.cfg.UserClaim)
	switch {
	case !ok:
		return hub.User{}, unauthenticated("token user claim malformed")
	case id == "" && !j.cfg.AllowAnonymous:
		return hub.User{}, unauthenticated("token names no user")
	}
	u = hub.User{ID: id}
	u.TenantID, _ = claimString(claims, j.cfg.TenantClaim)
	u.Name, _ = claimString(claims, j.cfg.NameClaim)
	if exp, err := jwt.MapClaims(claims).GetExpirationTime(); err == nil && exp != nil {
		u.ExpiresAt = exp.Add(j.cfg.Leeway)
	}
	if u.Channels, err = channelList(claims[j.cfg.ChannelsClaim]); err != nil {
		return hub.User{}, unauthenticated("token channels claim malformed")
	}
	mapped := map[string]bool{j.cfg.UserClaim: true, j.cfg.TenantClaim: true, j.cfg.NameClaim: true, j.cfg.ChannelsClaim: true}
	if j.cfg.AccessTokenClaim == RawTokenClaim {
		u.AccessToken = token
	} else {
		u.AccessToken, _ = claimString(claims, j.cfg.AccessTokenClaim)
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
	return u, nil
}

// claimString renders a string or number claim. ok is false when the
// claim is present with another type; absent gives "", true.
func claimString(claims map[string]any, name string) (s string, ok bool) {
	switch v := claims[name].(type) {
	case nil:
		_, present := claims[name]
		return "", !present
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	}
	return "", false
}
