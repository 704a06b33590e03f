package channels

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pushd/pushd/pkg/hub"
)

// Placeholders of a pattern.
const (
	tenantPlaceholder = "{tenant}"
	userPlaceholder   = "{user}"
)

type segKind uint8

const (
	segText   segKind = iota // literal text
	segStar                  // "*": any run of characters, possibly empty
	segTenant                // "{tenant}"
	segUser                  // "{user}"
)

type segment struct {
	kind segKind
	text string // of a segText
}

// pattern is a parsed Namespace.Match or identity grant.
type pattern struct {
	segs               []segment
	hasTenant, hasUser bool
}

// parsePattern parses literal text, "*", "{tenant}" and "{user}". Any other
// "{" or "}" is an error, so that a misspelt placeholder ("{tenantId}") is
// not taken for text. A placeholder must be followed by "/" or end the
// pattern, and no "*" may come before it: so where it lies in a name is
// certain, and no name is the channel of two tenants ("a-{tenant}-*" would
// give "a-x-y-z" to tenants "x" and "x-y").
func parsePattern(s string) (pattern, error) {
	if s == "" {
		return pattern{}, errors.New("empty pattern")
	}
	if reason := badChar(s); reason != "" {
		return pattern{}, fmt.Errorf("pattern %q: %s", s, reason)
	}
	var p pattern
	for i := 0; i < len(s); {
		switch rest := s[i:]; {
		case rest[0] == '*':
			if n := len(p.segs); n == 0 || p.segs[n-1].kind != segStar { // "**" is "*"
				p.segs = append(p.segs, segment{kind: segStar})
			}
			i++
		case strings.HasPrefix(rest, tenantPlaceholder), strings.HasPrefix(rest, userPlaceholder):
			ph, kind := tenantPlaceholder, segTenant
			if rest[1] == 'u' {
				ph, kind = userPlaceholder, segUser
			}
			switch {
			case strings.Contains(s[:i], "*"):
				return pattern{}, fmt.Errorf("pattern %q: %s after a \"*\"", s, ph)
			case len(rest) > len(ph) && rest[len(ph)] != '/':
				return pattern{}, fmt.Errorf("pattern %q: %s not followed by \"/\" or the end", s, ph)
			}
			p.segs = append(p.segs, segment{kind: kind})
			p.hasTenant = p.hasTenant || kind == segTenant
			p.hasUser = p.hasUser || kind == segUser
			i += len(ph)
		case rest[0] == '{' || rest[0] == '}':
			return pattern{}, fmt.Errorf("pattern %q: %q at byte %d is not part of {tenant} or {user}", s, rest[0], i)
		default:
			n := strings.IndexAny(rest, "*{}")
			if n < 0 {
				n = len(rest)
			}
			p.segs = append(p.segs, segment{kind: segText, text: rest[:n]})
			i += n
		}
	}
	return p, nil
}

// binding says what the placeholders stand for in a match. A placeholder
// that is not bound matches structurally: one or more characters other than
// "/".
type binding struct {
	tenant, user         string
	bindTenant, bindUser bool
}

// bindAll binds both placeholders to u's tenant and id.
func bindAll(u *hub.User) binding {
	return binding{tenant: u.TenantID, user: u.ID, bindTenant: true, bindUser: true}
}

// stackPositions is the longest name (plus one) matched without allocating.
const stackPositions = 256

// match reports whether name matches p under b. It tracks the set of
// positions in name the segments so far can end at, so its cost is linear
// in len(name) per segment whatever the pattern (no backtracking).
func (p *pattern) match(name string, b binding) bool {
	n := len(name)
	var bufA, bufB [stackPositions]bool
	var cur, next []bool
	if n < stackPositions {
		cur, next = bufA[:n+1], bufB[:n+1]
	} else {
		cur, next = make([]bool, n+1), make([]bool, n+1)
	}
	cur[0] = true
	for _, sg := range p.segs {
		clear(next)
		reached := false
		switch sg.kind {
		case segText:
			reached = stepText(cur, next, name, sg.text)
		case segStar:
			for q := 0; q <= n; q++ {
				reached = reached || cur[q]
				next[q] = reached
			}
		case segTenant, segUser:
			value, bound := b.user, b.bindUser
			if sg.kind == segTenant {
				value, bound = b.tenant, b.bindTenant
			}
			if !bound {
				open := false // some p < q with cur[p] and no "/" in name[p:q]
				for q := 1; q <= n; q++ {
					open = name[q-1] != '/' && (open || cur[q-1])
					next[q] = open
					reached = reached || open
				}
				break
			}
			if value == "" || strings.Contains(value, "/") {
				return false // the identity has no such value, or one no placeholder matches
			}
			reached = stepText(cur, next, name, value)
		}
		if !reached {
			return false
		}
		cur, next = next, cur
	}
	return cur[n]
}

// stepText marks in next the ends of text after each position of cur it
// follows in name, and reports whether it marked any.
func stepText(cur, next []bool, name, text string) bool {
	reached := false
	for q := 0; q+len(text) <= len(name); q++ {
		if cur[q] && name[q:q+len(text)] == text {
			next[q+len(text)] = true
			reached = true
		}
	}
	return reached
}

// granted reports whether one of u's grants covers channel: an exact name,
// or a pattern (a grant with "*", "{" or "}") matching with the
// placeholders bound to u. A malformed grant grants nothing.
func granted(u *hub.User, channel string) bool {
	for _, g := range u.Channels {
		if !strings.ContainsAny(g, "*{}") {
			if g == channel {
				return true
			}
			continue
		}
		p, err := parsePattern(g)
		if err == nil && p.match(channel, bindAll(u)) {
			return true
		}
	}
	return false
}
