package httpx

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
)

var (
	// ErrNoBearer is CheckBearer's error for a request without an
	// Authorization: Bearer credential.
	ErrNoBearer = errors.New("no Authorization: Bearer credential")
	// ErrBadBearer is CheckBearer's error for a credential that is none
	// of the keys.
	ErrBadBearer = errors.New("invalid Bearer credential")
)

// CheckBearer checks the Authorization: Bearer credential of r against
// keys. Every key is compared, in constant time, whichever matches, so
// the time taken tells nothing about which key is close. Empty keys
// never match: no keys refuse everybody.
func CheckBearer(r *http.Request, keys ...string) error {
	got, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !found || got == "" {
		return ErrNoBearer
	}
	ok := 0
	for _, k := range keys {
		if k != "" {
			ok |= subtle.ConstantTimeCompare([]byte(k), []byte(got))
		}
	}
	if ok != 1 {
		return ErrBadBearer
	}
	return nil
}
