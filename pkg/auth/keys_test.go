package auth

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"maps"
	"strings"
	"testing"
)

func TestParseJWK(t *testing.T) {
	testKeys(t)
	testKeysEC(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	with := func(k map[string]any, kv ...any) map[string]any {
		k = maps.Clone(k)
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(k, kv[i].(string))
			} else {
				k[kv[i].(string)] = kv[i+1]
			}
		}
		return k
	}
	rsaK, ecK, edK := rsaJWK("r", &rsaKey.PublicKey), ecJWK("e", &ecKey.PublicKey), edJWK("d", edKey)
	ecBytes, _ := ecKey.PublicKey.Bytes()
	notOnCurve := append([]byte(nil), ecBytes[33:]...)
	notOnCurve[31] ^= 1

	tests := []struct {
		name string
		jwk  map[string]any
		alg  string // "" = refused
	}{
		{"rsa", rsaK, RS256},
		{"rsa marked RS256", with(rsaK, "alg", "RS256"), RS256},
		{"ec", ecK, ES256},
		{"ec without alg", with(ecK, "alg", nil), ES256},
		{"ed25519", edK, EdDSA},
		{"ed25519 marked EdDSA", with(edK, "alg", "EdDSA"), EdDSA},
		{"rsa marked PS256", with(rsaK, "alg", "PS256"), ""},
		{"rsa marked ES256", with(rsaK, "alg", "ES256"), ""},
		{"ec marked HS256", with(ecK, "alg", "HS256"), ""},
		{"rsa 1024 bits", rsaJWK("s", &small.PublicKey), ""},
		{"rsa exponent 1", with(rsaK, "e", enc([]byte{1})), ""},
		{"rsa even exponent", with(rsaK, "e", enc([]byte{1, 0, 0})), ""},
		{"rsa huge exponent", with(rsaK, "e", enc([]byte{1, 0, 0, 0, 1})), ""},
		{"rsa without n", with(rsaK, "n", nil), ""},
		{"rsa padded n", with(rsaK, "n", rsaK["n"].(string)+"="), ""},
		{"ec P-384", with(ecK, "crv", "P-384"), ""},
		{"ec point not on curve", with(ecK, "y", enc(notOnCurve)), ""},
		{"ec short x", with(ecK, "x", enc(ecBytes[1:32])), ""},
		{"okp X25519", with(edK, "crv", "X25519"), ""},
		{"okp short x", with(edK, "x", enc(make([]byte, 31))), ""},
		{"symmetric", map[string]any{"kty": "oct", "k": enc([]byte(testSecret))}, ""},
		{"no kty", with(rsaK, "kty", nil), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var k jwk
			b, _ := json.Marshal(tt.jwk)
			if err := json.Unmarshal(b, &k); err != nil {
				t.Fatal(err)
			}
			vk, err := parseJWK(k)
			if tt.alg == "" {
				if err == nil {
					t.Fatalf("accepted as %s key", vk.alg)
				}
				return
			}
			if err != nil || vk.alg != tt.alg {
				t.Fatalf("parseJWK = %s, %v; want %s", vk.alg, err, tt.alg)
			}
		})
	}

	// The parsed keys are the ones the JWKs describe.
	for _, c := range []struct {
		jwk  map[string]any
		want interface{ Equal(crypto.PublicKey) bool }
	}{{rsaK, &rsaKey.PublicKey}, {ecK, &ecKey.PublicKey}, {edK, edKey.Public().(ed25519.PublicKey)}} {
		b, _ := json.Marshal(c.jwk)
		var k jwk
		_ = json.Unmarshal(b, &k)
		vk, err := parseJWK(k)
		if err != nil || !c.want.Equal(vk.key) {
			t.Fatalf("%s key differs from its JWK (%v)", c.jwk["kty"], err)
		}
	}
}

func TestParseJWKS(t *testing.T) {
	testKeys(t)
	testKeysEC(t)
	doc := func(keys ...any) []byte {
		b, _ := json.Marshal(map[string]any{"keys": keys})
		return b
	}
	encKey := ecJWK("e1", &ecKey.PublicKey)
	encKey["use"] = "enc"

	set, err := parseJWKS(doc(rsaJWK("r1", &rsaKey.PublicKey), rsaJWK("r1", &rsaOther.PublicKey),
		encKey, map[string]any{"kty": "oct", "k": "c2VjcmV0"}, "not an object", edJWK("", edKey)))
	if err != nil {
		t.Fatal(err)
	}
	if len(set.all) != 3 || len(set.lookup("r1")) != 2 || len(set.lookup("e1")) != 0 || len(set.lookup("")) != 3 {
		t.Fatalf("set = %d keys, r1 %d, e1 %d", len(set.all), len(set.lookup("r1")), len(set.lookup("e1")))
	}
	if !set.has("") || !set.has("r1") || set.has("e1") {
		t.Fatal("has: wrong kids")
	}

	for name, body := range map[string][]byte{
		"no usable key": doc(encKey),
		"empty":         doc(),
		"not json":      []byte("<html>"),
		"keys not list": []byte(`{"keys":{}}`),
	} {
		if _, err := parseJWKS(body); err == nil || !strings.HasPrefix(err.Error(), "key set") {
			t.Errorf("%s: err = %v, want a key set error", name, err)
		}
	}
}
