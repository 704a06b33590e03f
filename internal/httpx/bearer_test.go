package httpx

import (
	"errors"
	"net/http/httptest"
	"testing"
)

func TestCheckBearer(t *testing.T) {
	for _, c := range []struct {
		name, header string
		keys         []string
		want         error
	}{
		{"first key", "Bearer k1", []string{"k1", "k2"}, nil},
		{"last key", "Bearer k2", []string{"k1", "k2"}, nil},
		{"one token", "Bearer s3cret", []string{"s3cret"}, nil},
		{"no header", "", []string{"k1"}, ErrNoBearer},
		{"empty bearer", "Bearer ", []string{"k1", ""}, ErrNoBearer},
		{"basic", "Basic azE=", []string{"k1"}, ErrNoBearer},
		{"lower-case scheme", "bearer k1", []string{"k1"}, ErrNoBearer},
		{"wrong key", "Bearer k3", []string{"k1", "k2"}, ErrBadBearer},
		{"prefix of a key", "Bearer k", []string{"k1"}, ErrBadBearer},
		{"key with more", "Bearer k1 ", []string{"k1"}, ErrBadBearer},
		{"no keys", "Bearer k1", nil, ErrBadBearer},
		{"empty key never matches", "Bearer x", []string{""}, ErrBadBearer},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if c.header != "" {
			r.Header.Set("Authorization", c.header)
		}
		if err := CheckBearer(r, c.keys...); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}
