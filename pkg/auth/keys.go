package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
)

// minRSABits is the smallest RSA modulus accepted, from a PEM file or a
// key set.
const minRSABits = 2048

// verifyKey is a key together with the one algorithm it verifies, so that
// a token can never choose how its key is used.
type verifyKey struct {
	alg string
	key any // []byte (HS256), *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// keyAlg returns the algorithm a public key verifies: RS256 for RSA keys
// of at least 2048 bits, ES256 for P-256 keys, EdDSA for Ed25519 keys.
func keyAlg(key any) (string, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return "", fmt.Errorf("RSA key has %d bits, need at least %d", k.N.BitLen(), minRSABits)
		}
		return RS256, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("EC key on curve %s, only P-256 (ES256) is supported", k.Curve.Params().Name)
		}
		return ES256, nil
	case ed25519.PublicKey:
		return EdDSA, nil
	}
	return "", fmt.Errorf("public key is %T, not RSA, EC P-256 or Ed25519", key)
}

// parsePublicKey reads a PEM public key ("PUBLIC KEY", "RSA PUBLIC KEY" or
// a "CERTIFICATE") and returns it with its algorithm.
func parsePublicKey(data []byte) (verifyKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return verifyKey{}, errors.New("no PEM block in public key")
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
		return verifyKey{}, fmt.Errorf("unsupported PEM block %q", block.Type)
	}
	if err != nil {
		return verifyKey{}, fmt.Errorf("parse public key: %w", err)
	}
	alg, err := keyAlg(key)
	if err != nil {
		return verifyKey{}, err
	}
	return verifyKey{alg: alg, key: key}, nil
}

// jwk holds the members of a JSON Web Key (RFC 7517) that public
// signature keys use.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWK turns a public RSA, EC P-256 or Ed25519 JWK (RFC 7518 §6,
// RFC 8037) into a key. A key whose "alg" names another algorithm than
// the one its type verifies is refused.
func parseJWK(k jwk) (verifyKey, error) {
	var key any
	switch k.Kty {
	case "RSA":
		n, err := jwkBytes("n", k.N, 0)
		if err != nil {
			return verifyKey{}, err
		}
		e, err := jwkBytes("e", k.E, 0)
		if err != nil {
			return verifyKey{}, err
		}
		exp := new(big.Int).SetBytes(e)
		if !exp.IsInt64() || exp.Int64() < 3 || exp.Int64() > 1<<31-1 || exp.Bit(0) == 0 {
			return verifyKey{}, errors.New("jwk: RSA exponent out of range")
		}
		key = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}
	case "EC":
		if k.Crv != "P-256" {
			return verifyKey{}, fmt.Errorf("jwk: EC curve %q not supported (P-256)", k.Crv)
		}
		x, err := jwkBytes("x", k.X, 32)
		if err != nil {
			return verifyKey{}, err
		}
		y, err := jwkBytes("y", k.Y, 32)
		if err != nil {
			return verifyKey{}, err
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return verifyKey{}, fmt.Errorf("jwk: %w", err)
		}
		key = pub
	case "OKP":
		if k.Crv != "Ed25519" {
			return verifyKey{}, fmt.Errorf("jwk: OKP curve %q not supported (Ed25519)", k.Crv)
		}
		x, err := jwkBytes("x", k.X, ed25519.PublicKeySize)
		if err != nil {
			return verifyKey{}, err
		}
		key = ed25519.PublicKey(x)
	default:
		return verifyKey{}, fmt.Errorf("jwk: key type %q not supported", k.Kty)
	}
	alg, err := keyAlg(key)
	if err != nil {
		return verifyKey{}, fmt.Errorf("jwk: %w", err)
	}
	if k.Alg != "" && k.Alg != alg {
		return verifyKey{}, fmt.Errorf("jwk: %s key marked for %q", alg, k.Alg)
	}
	return verifyKey{alg: alg, key: key}, nil
}

// jwkBytes decodes a base64url member; size, when not 0, is its required
// length in bytes.
func jwkBytes(name, v string, size int) ([]byte, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(v)
	switch {
	case err != nil:
		return nil, fmt.Errorf("jwk: member %q is not base64url: %w", name, err)
	case len(b) == 0:
		return nil, fmt.Errorf("jwk: member %q is missing", name)
	case size != 0 && len(b) != size:
		return nil, fmt.Errorf("jwk: member %q has %d bytes, want %d", name, len(b), size)
	}
	return b, nil
}
