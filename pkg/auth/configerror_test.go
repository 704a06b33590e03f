package auth

import (
	"errors"
	"strings"
	"testing"
)

// TestJWTConfigErrorsNameTheField: every refusal of a JWTConfig is a
// *ConfigError naming the field to change (or none when several are at
// fault), so that pushd can report its own key for it.
func TestJWTConfigErrorsNameTheField(t *testing.T) {
	secret := strings.Repeat("s", 32)
	for _, c := range []struct {
		cfg   JWTConfig
		field string
	}{
		{JWTConfig{}, ""},
		{JWTConfig{Secret: "short"}, "Secret"},
		{JWTConfig{Algorithm: "HS512", Secret: secret}, "Algorithm"},
		{JWTConfig{JWKSURL: "ftp://x"}, "JWKSURL"},
		{JWTConfig{PublicKeyFile: "/nonexistent/key.pem"}, "PublicKeyFile"},
		{JWTConfig{PublicKeyPEM: "not pem"}, "PublicKeyPEM"},
		{JWTConfig{Secret: secret, Sources: []string{"header"}}, "Sources"},
		{JWTConfig{Secret: secret, Sources: []string{"carrier-pigeon"}}, "Sources"},
		{JWTConfig{Secret: secret, Leeway: -1}, "Leeway"},
		{JWTConfig{Algorithm: RS256}, ""},
	} {
		_, err := NewJWT(c.cfg)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != c.field || !strings.HasPrefix(err.Error(), "auth: jwt: ") {
			t.Errorf("NewJWT(%+v) = %v, want a ConfigError about %q", c.cfg, err, c.field)
		}
	}
}
