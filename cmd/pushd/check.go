package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/pushd/pushd/pkg/auth"
)

// appError names the key of a problem of apps[i]: an authenticator's
// refusal of its JWT settings by their YAML keys (apps[0].auth.jwt.secret),
// anything else under apps[i] as the part says it ("apps[0].hooks: …").
func appError(i int, err error) error {
	var ce *auth.ConfigError
	if errors.As(err, &ce) {
		key := fmt.Sprintf("apps[%d].auth.jwt", i)
		if name := jwtKey(ce.Field); name != "" {
			key += "." + name
		}
		return fmt.Errorf("config: %s: %s", key, jwtKeysInText(ce.Err.Error()))
	}
	return fmt.Errorf("config: apps[%d].%w", i, err)
}

// jwtKeys maps the Go names of auth.JWTConfig's fields to the YAML keys
// of auth.jwt; the configuration's struct has the same field names.
var jwtKeys = func() map[string]string {
	m := map[string]string{}
	t := reflect.TypeFor[AuthConfig]()
	f, _ := t.FieldByName("JWT")
	for _, sf := range reflect.VisibleFields(f.Type) {
		if name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ","); name != "" && name != "-" {
			m[sf.Name] = name
		}
	}
	return m
}()

// jwtKey is the YAML key of a JWTConfig field, or "".
func jwtKey(field string) string { return jwtKeys[field] }

var goFieldName = regexp.MustCompile(`\b[A-Z][A-Za-z]+\b`)

// jwtKeysInText rewrites the field names in an auth.ConfigError's text
// as the YAML keys ("set Algorithm, or … JWKSURL" → "set algorithm, or …
// jwks_url"); "a public key" is either of two keys.
func jwtKeysInText(msg string) string {
	msg = strings.ReplaceAll(msg, "a public key", "public_key_pem (or public_key_file)")
	return goFieldName.ReplaceAllStringFunc(msg, func(w string) string {
		if k := jwtKey(w); k != "" {
			return k
		}
		return w
	})
}

// checkNacosServer checks one cluster.nacos.servers entry as the registry
// parses it — host:port, or nacos://host:port?grpc_port=N — without
// contacting it.
func checkNacosServer(s string) error {
	raw := s
	if !strings.Contains(s, "://") {
		s = "nacos://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Hostname() == "" || u.Port() == "" {
		return fmt.Errorf("%q: want host:port", raw)
	}
	if _, err := strconv.ParseUint(u.Port(), 10, 16); err != nil || u.Port() == "0" {
		return fmt.Errorf("%q: bad port", raw)
	}
	if g := u.Query().Get("grpc_port"); g != "" {
		if n, err := strconv.ParseUint(g, 10, 16); err != nil || n == 0 {
			return fmt.Errorf("%q: bad grpc_port", raw)
		}
	}
	return nil
}

// checkListenAddr checks a listen address ("", ":7946", "10.0.0.5:7946")
// without binding it.
func checkListenAddr(addr string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want host:port or :port", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil && port != "" || n > 65535 {
		return fmt.Errorf("%q: bad port", addr)
	}
	return nil
}

// joinProblems joins the configuration problems of the loader and those
// of building the parts, leaving out a part's refusal when the loader
// already named a problem at or under its key (cluster.secret is missing:
// the nacos transport's "cluster: Secret is required" says nothing more).
func joinProblems(loaded, built error) error {
	first := flatten(loaded)
	var keys []string
	for _, e := range first {
		keys = append(keys, problemKey(e))
	}
	out := first
next:
	for _, e := range flatten(built) {
		k := problemKey(e)
		for _, prev := range keys {
			if k != "" && (prev == k || strings.HasPrefix(prev, k+".") || strings.HasPrefix(prev, k+"[")) {
				continue next
			}
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// flatten lists the errors joined in err.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// problemKey is the key path of a "config: KEY: …" problem, or "".
func problemKey(err error) string {
	rest, ok := strings.CutPrefix(err.Error(), "config: ")
	if !ok {
		return ""
	}
	key, _, _ := strings.Cut(rest, ": ")
	return key
}
