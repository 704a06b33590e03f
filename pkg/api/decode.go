package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/pushd/pushd/pkg/hub"
)

// The send body is read without reflection: the standard library's
// scanner checks the whole body (json.Valid, which allocates nothing),
// then members walks the checked bytes and each field is taken from its
// span. The answers match encoding/json's strict decoding of SendRequest
// (unknown fields refused, null leaves a field as it is, the last of
// duplicate keys wins, invalid UTF-8 becomes U+FFFD) except that field
// names must be spelt exactly, not in another case.
//
// encoding/json cost 45% of a send's handler in the profile (a Decoder and
// its buffer per request, reflection over SendRequest); encoding/json/v2
// is still an experiment in Go 1.26, and the parsers in the module graph
// either re-encode values or are no longer maintained, so the few lines
// below take their place.

// errNotObject refuses a body or batch item that is not a JSON object.
var errNotObject = errors.New("a JSON object is expected")

// unknownFieldError refuses a field SendRequest does not have.
type unknownFieldError struct{ name string }

func (e unknownFieldError) Error() string { return fmt.Sprintf("unknown field %q", e.name) }

// typeError refuses a value of the wrong JSON type.
func typeError(field, want string, val []byte) error {
	return fmt.Errorf("%s: %s is expected, not %s", field, want, kindOf(val))
}

func kindOf(val []byte) string {
	switch val[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// span walks JSON that json.Valid accepted.
type span struct {
	b []byte
	i int
}

func (s *span) skipSpace() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value returns the value starting at s.i and moves past it.
func (s *span) value() []byte {
	start := s.i
	switch s.b[s.i] {
	case '"':
		s.skipString()
	case '{', '[':
		depth := 0
		for {
			switch s.b[s.i] {
			case '"':
				s.skipString()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			s.i++
			if depth == 0 {
				break
			}
		}
	default: // a number or a literal
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return s.b[start:s.i]
			}
			s.i++
		}
	}
	return s.b[start:s.i]
}

// skipString moves past the string starting at s.i: to the first quote
// after it not escaped by an odd number of backslashes.
func (s *span) skipString() {
	i := s.i + 1
	for {
		i += bytes.IndexByte(s.b[i:], '"') // checked JSON: the string ends
		k := i
		for s.b[k-1] == '\\' {
			k--
		}
		if (i-k)%2 == 0 {
			break
		}
		i++
	}
	s.i = i + 1
}

// members iterates over the members of a checked JSON object, or the
// elements of a checked array (key stays nil).
type members struct {
	span
	key, val []byte
}

func newMembers(b []byte) members { return members{span: span{b: b, i: 1}} }

// next moves to the next member and reports whether there is one.
func (m *members) next() bool {
	m.skipSpace()
	if m.b[m.i] == ',' {
		m.i++
		m.skipSpace()
	}
	if c := m.b[m.i]; c == '}' || c == ']' {
		return false
	}
	if m.b[0] == '{' {
		m.key = m.value()
		m.skipSpace()
		m.i++ // ':'
		m.skipSpace()
	}
	m.val = m.value()
	return true
}

// keyName is the member's key, unquoted: its own bytes when it holds no
// escape.
func (m *members) keyName() ([]byte, error) {
	inner := m.key[1 : len(m.key)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner, nil
	}
	s, err := stringOf(m.key)
	return []byte(s), err
}

// stringOf unquotes a checked JSON string as encoding/json does.
func stringOf(val []byte) (string, error) {
	inner := val[1 : len(val)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), nil
	}
	var s string
	err := json.Unmarshal(val, &s)
	return s, err
}

// stringField decodes a string field; null leaves it as it is.
func stringField(field string, val []byte, dst *string) error {
	switch val[0] {
	case 'n':
		return nil
	case '"':
		s, err := stringOf(val)
		*dst = s
		return err
	}
	return typeError(field, "a string", val)
}

// boolField decodes a boolean field; null leaves it as it is.
func boolField(field string, val []byte, dst *bool) error {
	switch val[0] {
	case 'n':
		return nil
	case 't':
		*dst = true
		return nil
	case 'f':
		*dst = false
		return nil
	}
	return typeError(field, "a boolean", val)
}

// eventNames holds the event names seen, up to maxEventNames, so that a
// send's name is usually found, not allocated: apps use a few names.
// The map is never changed once published; a new name publishes a copy.
var (
	eventNames   atomic.Pointer[map[string]string]
	eventNamesMu sync.Mutex
)

// maxEventNames bounds eventNames.
const maxEventNames = 256

// eventName decodes the event field like stringField, taking a name
// without escapes from eventNames.
func eventName(val []byte, dst *string) error {
	if val[0] != '"' || bytes.IndexByte(val, '\\') >= 0 || !utf8.Valid(val) {
		return stringField("event", val, dst)
	}
	inner := val[1 : len(val)-1]
	if m := eventNames.Load(); m != nil {
		if name, ok := (*m)[string(inner)]; ok {
			*dst = name
			return nil
		}
	}
	*dst = string(inner)
	eventNamesMu.Lock()
	defer eventNamesMu.Unlock()
	old := eventNames.Load()
	if old != nil && len(*old) >= maxEventNames {
		return nil
	}
	m := make(map[string]string, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	m[*dst] = *dst
	eventNames.Store(&m)
	return nil
}

func lenOf(m *map[string]string) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

// stringsField decodes an array of strings; null empties it, a null
// element is "".
func stringsField(field string, val []byte, dst *[]string) error {
	switch val[0] {
	case 'n':
		*dst = nil
		return nil
	case '[':
	default:
		return typeError(field, "an array of strings", val)
	}
	n := 0
	for it := newMembers(val); it.next(); {
		n++
	}
	list := make([]string, n)
	i := 0
	for it := newMembers(val); it.next(); i++ {
		if err := stringField(field, it.val, &list[i]); err != nil {
			return err
		}
	}
	*dst = list
	return nil
}

// decodeSend decodes a checked send body into req; null leaves req as it
// is.
func decodeSend(b []byte, req *SendRequest) error {
	if b[0] == 'n' {
		return nil
	}
	if b[0] != '{' {
		return errNotObject
	}
	for it := newMembers(b); it.next(); {
		key, err := it.keyName()
		if err != nil {
			return err
		}
		switch string(key) {
		case "to":
			err = decodeTarget(it.val, &req.To)
		case "event":
			err = eventName(it.val, &req.Event)
		case "data":
			req.Data = json.RawMessage(it.val)
		case "qos":
			err = boolField("qos", it.val, &req.QoS)
		case "ttl":
			err = stringField("ttl", it.val, &req.TTL)
		case "async":
			err = boolField("async", it.val, &req.Async)
		default:
			err = unknownFieldError{string(key)}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// decodeTarget decodes the "to" member; null leaves t as it is.
func decodeTarget(val []byte, t *hub.Target) error {
	switch val[0] {
	case 'n':
		return nil
	case '{':
	default:
		return typeError("to", "an object", val)
	}
	for it := newMembers(val); it.next(); {
		key, err := it.keyName()
		if err != nil {
			return err
		}
		switch string(key) {
		case "all":
			err = boolField("to.all", it.val, &t.All)
		case "userIds":
			err = stringsField("to.userIds", it.val, &t.UserIDs)
		case "accessTokens":
			err = stringsField("to.accessTokens", it.val, &t.AccessTokens)
		case "tenantIds":
			err = stringsField("to.tenantIds", it.val, &t.TenantIDs)
		case "channels":
			err = stringsField("to.channels", it.val, &t.Channels)
		case "connectionIds":
			err = stringsField("to.connectionIds", it.val, &t.ConnectionIDs)
		case "listening":
			err = boolField("to.listening", it.val, &t.Listening)
		default:
			err = unknownFieldError{"to." + string(key)}
		}
		if err != nil {
			return err
		}
	}
	return nil
}
