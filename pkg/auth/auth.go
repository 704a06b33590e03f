package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/pushd/pushd/pkg/hub"
)

// Authenticator tells who sent a browser request.
type Authenticator interface {
	// Authenticate returns the request's user. A request without valid
	// credentials yields an error wrapping ErrUnauthenticated; a failing
	// identity backend yields one wrapping ErrUnavailable. It uses
	// r.Context() for cancellation.
	Authenticate(r *http.Request) (hub.User, error)
}

// Func adapts a function to Authenticator, for library users with their
// own session handling.
type Func func(r *http.Request) (hub.User, error)

// Authenticate calls f(r).
func (f Func) Authenticate(r *http.Request) (hub.User, error) { return f(r) }

var (
	// ErrUnauthenticated is wrapped by every "who are you?" failure: no
	// credentials, bad signature, expired token, backend said 401/403.
	ErrUnauthenticated = errors.New("auth: unauthenticated")
	// ErrUnavailable is wrapped when the identity could not be checked
	// because a backend failed (timeout, 5xx, malformed answer).
	ErrUnavailable = errors.New("auth: identity backend unavailable")
)

// Error is the concrete error of an authentication failure. It matches
// ErrUnauthenticated with errors.Is.
type Error struct {
	// Reason names the problem in a few words, safe to show the browser.
	Reason string
}

// Error implements error.
func (e *Error) Error() string { return "auth: unauthenticated: " + e.Reason }

// Is makes errors.Is(err, ErrUnauthenticated) true.
func (e *Error) Is(target error) bool { return target == ErrUnauthenticated }

// Reason returns the reason of an authentication failure, or "" when err
// is not one.
func Reason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func unauthenticated(reason string) error { return &Error{Reason: reason} }

// Interface guards.
var (
	_ Authenticator = Demo{}
	_ Authenticator = (*JWT)(nil)
	_ Authenticator = (*Webhook)(nil)
	_ Authenticator = Func(nil)
)

// maxGrants bounds the channel grants one identity carries.
const maxGrants = 256

// channelList reads the channels an identity grants: nil, an array of
// strings, or one string of names separated by spaces (like an OAuth
// scope).
func channelList(v any) ([]string, error) {
	var out []string
	switch list := v.(type) {
	case nil:
		return nil, nil
	case string:
		out = strings.Fields(list)
	case []any:
		for _, item := range list {
			s, ok := item.(string)
			if !ok || s == "" {
				return nil, errors.New("not a list of channel names")
			}
			out = append(out, s)
		}
	default:
		return nil, errors.New("not a list of channel names")
	}
	if len(out) > maxGrants {
		return nil, fmt.Errorf("more than %d channels", maxGrants)
	}
	return out, nil
}
