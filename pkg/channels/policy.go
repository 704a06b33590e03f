package channels

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/pushd/pushd/pkg/hub"
)

// Mode says who may join a namespace's channels from a browser.
type Mode string

// The join modes.
const (
	// Public: anyone authenticated for the app.
	Public Mode = "public"
	// Identity: only the channels the identity grants (hub.User.Channels:
	// exact names or patterns).
	Identity Mode = "identity"
	// Webhook: the backend is asked (Config.Webhook); answers are cached
	// briefly.
	Webhook Mode = "webhook"
	// Server: only the server API subscribes; browsers never.
	Server Mode = "server"
)

// DefaultMaxNameLength is the longest channel name, in bytes, when
// Config.MaxNameLength is zero.
const DefaultMaxNameLength = 128

// maxConcurrentAsks bounds the backend calls one Authorize makes at a time.
const maxConcurrentAsks = 8

var (
	// ErrForbidden is wrapped by the error of a join the policy refuses.
	ErrForbidden = errors.New("channels: join forbidden")
	// ErrInvalidName is wrapped by the error for a channel name that is
	// empty, too long, not UTF-8 or has a control character.
	ErrInvalidName = errors.New("channels: invalid channel name")
	// ErrUnavailable is wrapped by the error of a join the backend could
	// not decide (it timed out, failed or answered garbage): the browser
	// should retry later (503), it was not refused.
	ErrUnavailable = errors.New("channels: backend unavailable")
)

// Namespace is one rule of a Policy: the channels whose name starts with
// Prefix, or matches Match, fall in it.
type Namespace struct {
	// Name names the namespace in logs, metrics and errors. Default:
	// Prefix, or Match.
	Name string
	// Prefix is a literal prefix of the namespace's channel names. Exactly
	// one of Prefix and Match is set; a namespace of every channel is
	// Match "*".
	Prefix string
	// Match is a pattern of the namespace's channel names: literal text,
	// "*" for any run of characters (possibly empty), and "{tenant}" or
	// "{user}" for one or more characters other than "/" that, for a join,
	// must equal the identity's TenantID or ID.
	Match string
	// Join says who may join the channels from a browser; required.
	Join Mode
	// Presence sends join and leave events to the channels' subscribers.
	Presence bool
}

// Config configures New.
type Config struct {
	// Namespaces are the rules, in order: a channel falls in the first
	// one it matches. Default none: no browser joins any channel.
	Namespaces []Namespace
	// Webhook decides the joins of Webhook namespaces (NewWebhookAsker
	// builds the standard one). Required when a namespace's Join is
	// Webhook.
	Webhook Asker
	// MaxNameLength is the longest channel name, in bytes. Default
	// DefaultMaxNameLength (128).
	MaxNameLength int
}

// Asker asks the backend whether u may join channel on the connection
// connID of app.
type Asker interface {
	// MayJoin reports the backend's answer; an error means there was no
	// answer (Authorize then fails with ErrUnavailable, not ErrForbidden).
	MayJoin(ctx context.Context, app string, u hub.User, connID, channel string) (bool, error)
}

// Policy decides which channels a browser may join, for one app. Build it
// with New; it is immutable and safe for concurrent use.
type Policy struct {
	rules   []rule
	asker   Asker
	maxName int
}

type rule struct {
	ns    Namespace
	match pattern // of ns.Match
}

// JoinError is the error of a refused or undecided join. It wraps
// ErrForbidden, ErrInvalidName or ErrUnavailable (and the backend's error).
type JoinError struct {
	// Channel is the channel that could not be joined.
	Channel string
	// Namespace is the name of its namespace; empty for a name in none (or
	// an invalid name).
	Namespace string
	// Reason says why in a few words, safe to show the browser: "matches
	// no namespace", "not granted by the identity", "another tenant's
	// channel", "backend unavailable", …
	Reason string

	kind  error // ErrForbidden, ErrInvalidName or ErrUnavailable
	cause error // the asker's error, for ErrUnavailable
}

// Error implements error.
func (e *JoinError) Error() string {
	s := fmt.Sprintf("channels: channel %q: %s", e.Channel, e.Reason)
	if e.cause != nil {
		s += " (" + e.cause.Error() + ")"
	}
	return s
}

// Unwrap makes errors.Is see the kind of failure and the backend's error.
func (e *JoinError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.kind, e.cause}
	}
	return []error{e.kind}
}

// New validates cfg and returns its Policy. Each namespace needs exactly
// one of Prefix and Match, a valid pattern, a known Join mode (Webhook only
// with cfg.Webhook) and a name no other namespace has; an error names the
// namespace by index and name.
func New(cfg Config) (*Policy, error) {
	p := &Policy{asker: cfg.Webhook, maxName: cfg.MaxNameLength}
	switch {
	case p.maxName == 0:
		p.maxName = DefaultMaxNameLength
	case p.maxName < 0:
		return nil, errors.New("channels: negative MaxNameLength")
	}
	names := make(map[string]int, len(cfg.Namespaces))
	for i, ns := range cfg.Namespaces {
		if ns.Name == "" {
			ns.Name = ns.Prefix + ns.Match
		}
		r, err := p.rule(ns)
		if err == nil {
			if j, dup := names[ns.Name]; dup {
				err = fmt.Errorf("namespace %d has the same name", j)
			}
		}
		if err != nil {
			if ns.Name == "" {
				return nil, fmt.Errorf("channels: namespace %d: %w", i, err)
			}
			return nil, fmt.Errorf("channels: namespace %d (%q): %w", i, ns.Name, err)
		}
		names[ns.Name] = i
		p.rules = append(p.rules, r)
	}
	return p, nil
}

// rule checks one namespace (its name defaulted) and compiles it.
func (p *Policy) rule(ns Namespace) (rule, error) {
	r := rule{ns: ns}
	switch {
	case ns.Prefix == "" && ns.Match == "":
		return r, errors.New("needs a prefix or a match")
	case ns.Prefix != "" && ns.Match != "":
		return r, errors.New("has both a prefix and a match")
	case ns.Prefix != "":
		if reason := checkName(ns.Prefix, p.maxName); reason != "" {
			return r, fmt.Errorf("prefix: %s", reason)
		}
	default:
		m, err := parsePattern(ns.Match)
		if err != nil {
			return r, fmt.Errorf("match: %w", err)
		}
		r.match = m
	}
	if reason := badChar(ns.Name); reason != "" {
		return r, fmt.Errorf("name: %s", reason)
	}
	switch ns.Join {
	case Public, Identity, Server:
	case Webhook:
		if p.asker == nil {
			return r, errors.New(`join "webhook" without a webhook`)
		}
	default:
		return r, fmt.Errorf("unknown join mode %q (want public, identity, webhook or server)", ns.Join)
	}
	return r, nil
}

// covers reports whether channel falls in r, matching placeholders
// structurally.
func (r *rule) covers(channel string) bool {
	if r.ns.Prefix != "" {
		return strings.HasPrefix(channel, r.ns.Prefix)
	}
	return r.match.match(channel, binding{})
}

// find returns the first rule covering channel, or nil.
func (p *Policy) find(channel string) *rule {
	for i := range p.rules {
		if r := &p.rules[i]; r.covers(channel) {
			return r
		}
	}
	return nil
}

// Lookup returns the namespace channel falls in (the first in config
// order), with any placeholder matching any value, and whether there is
// one. It does not check the name.
func (p *Policy) Lookup(channel string) (Namespace, bool) {
	if r := p.find(channel); r != nil {
		return r.ns, true
	}
	return Namespace{}, false
}

// CheckName returns nil when channel is a valid name under p's limits,
// else a *JoinError wrapping ErrInvalidName.
func (p *Policy) CheckName(channel string) error {
	if reason := checkName(channel, p.maxName); reason != "" {
		return &JoinError{Channel: channel, Reason: reason, kind: ErrInvalidName}
	}
	return nil
}

// Authorize returns nil when u may join every one of channels from a
// browser, on the connection connID of app. Otherwise it returns a
// *JoinError for the first channel, in order, that may not be joined: one
// wrapping ErrInvalidName for a bad name, ErrForbidden for a refusal, or
// ErrUnavailable when the backend of a Webhook namespace gave no answer.
//
// A channel in a namespace whose Match has placeholders must match it with
// them bound to u (its own tenant's and its own channels), whatever the
// mode. The backend is asked last, only about the channels before the
// first one refused without it, several at a time.
func (p *Policy) Authorize(ctx context.Context, app string, u hub.User, connID string, channels []string) error {
	var asks []question // what the backend must decide, in order
	var refused error
	for _, ch := range channels {
		r, err := p.decide(&u, ch)
		if err != nil {
			refused = err
			break
		}
		if r.ns.Join == Webhook {
			asks = append(asks, question{channel: ch, namespace: r.ns.Name})
		}
	}
	if err := p.askAll(ctx, app, u, connID, asks); err != nil {
		return err // it concerns an earlier channel than refused
	}
	return refused
}

// question is a join the backend must decide.
type question struct{ channel, namespace string }

// decide checks channel for u without the backend and returns its rule;
// for a Webhook namespace, the backend must decide then.
func (p *Policy) decide(u *hub.User, channel string) (*rule, error) {
	if err := p.CheckName(channel); err != nil {
		return nil, err
	}
	r := p.find(channel)
	if r == nil {
		return nil, &JoinError{Channel: channel, Reason: "matches no namespace", kind: ErrForbidden}
	}
	refuse := func(reason string) error {
		return &JoinError{Channel: channel, Namespace: r.ns.Name, Reason: reason, kind: ErrForbidden}
	}
	if r.ns.Join == Server {
		return nil, refuse(fmt.Sprintf("namespace %q is server-only", r.ns.Name))
	}
	if reason := r.foreign(channel, u); reason != "" {
		return nil, refuse(reason)
	}
	if r.ns.Join == Identity && !granted(u, channel) {
		return nil, refuse("not granted by the identity")
	}
	return r, nil
}

// foreign says why channel, which r covers, belongs to another tenant or
// user than u, or returns "".
func (r *rule) foreign(channel string, u *hub.User) string {
	b := binding{tenant: u.TenantID, bindTenant: true}
	switch {
	case r.match.hasTenant && !r.match.match(channel, b):
		if u.TenantID == "" {
			return "the identity has no tenant"
		}
		return "another tenant's channel"
	case r.match.hasUser && !r.match.match(channel, bindAll(u)):
		if u.ID == "" {
			return "the identity has no user id"
		}
		return "another user's channel"
	}
	return ""
}

// askAll asks the backend the questions, up to maxConcurrentAsks at a
// time, and returns the error of the first one in order that is not
// allowed.
func (p *Policy) askAll(ctx context.Context, app string, u hub.User, connID string, asks []question) error {
	switch len(asks) {
	case 0:
		return nil
	case 1:
		return p.ask(ctx, app, u, connID, asks[0])
	}
	errs := make([]error, len(asks))
	sem := make(chan struct{}, maxConcurrentAsks)
	var wg sync.WaitGroup
	for k, q := range asks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[k] = p.ask(ctx, app, u, connID, q)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// ask asks the backend one question.
func (p *Policy) ask(ctx context.Context, app string, u hub.User, connID string, q question) error {
	ok, err := p.asker.MayJoin(ctx, app, u, connID, q.channel)
	switch {
	case err != nil:
		return &JoinError{Channel: q.channel, Namespace: q.namespace, Reason: "backend unavailable", kind: ErrUnavailable, cause: err}
	case !ok:
		return &JoinError{Channel: q.channel, Namespace: q.namespace, Reason: "refused by the backend", kind: ErrForbidden}
	}
	return nil
}

// ValidName reports whether name is a valid channel name at most
// maxLength bytes long (≤ 0: DefaultMaxNameLength): not empty, UTF-8,
// without control characters (CR, LF, NUL, DEL, C1, …).
func ValidName(name string, maxLength int) bool {
	if maxLength <= 0 {
		maxLength = DefaultMaxNameLength
	}
	return checkName(name, maxLength) == ""
}

// checkName says what is wrong with name as a channel name, or returns "".
func checkName(name string, maxLength int) string {
	switch {
	case name == "":
		return "empty name"
	case len(name) > maxLength:
		return fmt.Sprintf("name longer than %d bytes", maxLength)
	}
	return badChar(name)
}

// badChar says what is wrong with the characters of s, or returns "".
func badChar(s string) string {
	for i, c := range s {
		switch {
		case c == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			return fmt.Sprintf("not UTF-8 at byte %d", i)
		case unicode.IsControl(c):
			return fmt.Sprintf("control character %U at byte %d", c, i)
		}
	}
	return ""
}
