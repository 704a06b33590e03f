package channels

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pushd/pushd/pkg/hub"
)

// askerFunc is an Asker made of a function.
type askerFunc func(ctx context.Context, app string, u hub.User, connID, channel string) (bool, error)

func (f askerFunc) MayJoin(ctx context.Context, app string, u hub.User, connID, channel string) (bool, error) {
	return f(ctx, app, u, connID, channel)
}

// recordingAsker allows the channels starting with "ok", refuses the
// others, fails for those starting with "down", and records what it was
// asked.
type recordingAsker struct {
	mu    sync.Mutex
	asked []string
}

func (a *recordingAsker) MayJoin(_ context.Context, app string, u hub.User, connID, channel string) (bool, error) {
	a.mu.Lock()
	a.asked = append(a.asked, app+" "+u.ID+" "+connID+" "+channel)
	a.mu.Unlock()
	rest := channel[strings.LastIndex(channel, "/")+1:]
	switch {
	case strings.HasPrefix(rest, "down"):
		return false, errors.New("backend down")
	case strings.HasPrefix(rest, "ok"):
		return true, nil
	}
	return false, nil
}

func (a *recordingAsker) calls() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.asked)
}

// testNamespaces covers every mode and both placeholders.
var testNamespaces = []Namespace{
	{Prefix: "news/", Join: Public},
	{Name: "admin", Prefix: "news/admin/", Join: Server}, // after news/: never reached
	{Prefix: "ops/", Join: Server},
	{Match: "tenant/{tenant}/*", Join: Public, Presence: true},
	{Name: "inbox", Match: "user/{user}", Join: Public},
	{Match: "t/{tenant}/u/{user}/*", Join: Identity},
	{Prefix: "team/", Join: Identity},
	{Prefix: "hook/", Join: Webhook},
	{Match: "rooms/{tenant}/*", Join: Webhook},
}

func newTestPolicy(t testing.TB, asker Asker) *Policy {
	t.Helper()
	p, err := New(Config{Namespaces: testNamespaces, Webhook: asker})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewValidates(t *testing.T) {
	asker := &recordingAsker{}
	for _, tt := range []struct {
		name string
		cfg  Config
		want string // in the error
	}{
		{"neither", Config{Namespaces: []Namespace{{Prefix: "a", Join: Public}, {Join: Public}}}, "namespace 1: needs a prefix or a match"},
		{"both", Config{Namespaces: []Namespace{{Name: "x", Prefix: "a", Match: "b*", Join: Public}}}, `namespace 0 ("x"): has both`},
		{"no mode", Config{Namespaces: []Namespace{{Prefix: "a/"}}}, `namespace 0 ("a/"): unknown join mode ""`},
		{"bad mode", Config{Namespaces: []Namespace{{Prefix: "a/", Join: "private"}}}, `unknown join mode "private"`},
		{"webhook without asker", Config{Namespaces: []Namespace{{Match: "*", Join: Webhook}}}, `namespace 0 ("*"): join "webhook" without a webhook`},
		{"misspelt placeholder", Config{Namespaces: []Namespace{{Match: "t/{tenantId}/*", Join: Public}}}, "not part of {tenant} or {user}"},
		{"stray brace", Config{Namespaces: []Namespace{{Match: "t/}", Join: Public}}}, "not part of"},
		{"placeholder after star", Config{Namespaces: []Namespace{{Match: "a/*/{tenant}", Join: Public}}}, `{tenant} after a "*"`},
		{"placeholder not before slash", Config{Namespaces: []Namespace{{Match: "room-{user}-*", Join: Public}}}, `{user} not followed by "/"`},
		{"control in match", Config{Namespaces: []Namespace{{Match: "a\n*", Join: Public}}}, "control character"},
		{"control in prefix", Config{Namespaces: []Namespace{{Prefix: "a\x00", Join: Public}}}, "control character"},
		{"prefix too long", Config{MaxNameLength: 4, Namespaces: []Namespace{{Prefix: "abcde", Join: Public}}}, "longer than 4 bytes"},
		{"duplicate name", Config{Namespaces: []Namespace{{Prefix: "a/", Join: Public}, {Prefix: "a/", Join: Server}}}, `namespace 1 ("a/"): namespace 0 has the same name`},
		{"negative length", Config{MaxNameLength: -1}, "negative MaxNameLength"},
	} {
		_, err := New(tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New = %v, want an error with %q", tt.name, err, tt.want)
		}
	}
	if _, err := New(Config{Namespaces: testNamespaces, Webhook: asker}); err != nil {
		t.Errorf("valid config: %v", err)
	}
	if _, err := New(Config{}); err != nil {
		t.Errorf("no namespaces: %v", err)
	}
}

func TestLookup(t *testing.T) {
	p := newTestPolicy(t, &recordingAsker{})
	for _, tt := range []struct {
		channel, want string // want "": in no namespace
	}{
		{"news/sport", "news/"},
		{"news/admin/x", "news/"}, // the first namespace wins
		{"ops/deploy", "ops/"},
		{"tenant/acme/orders", "tenant/{tenant}/*"}, // any tenant: structural
		{"tenant/globex/", "tenant/{tenant}/*"},
		{"tenant//orders", ""}, // a placeholder needs a character
		{"tenant/a/b/c", "tenant/{tenant}/*"},
		{"user/u1", "inbox"},
		{"user/u1/x", ""}, // a placeholder matches no "/"
		{"t/acme/u/u1/feed", "t/{tenant}/u/{user}/*"},
		{"rooms/acme/blue", "rooms/{tenant}/*"},
		{"rooms/acme", ""},
		{"news", ""},
		{"other", ""},
	} {
		ns, ok := p.Lookup(tt.channel)
		if ok != (tt.want != "") || ns.Name != tt.want {
			t.Errorf("Lookup(%q) = %q, %v; want %q", tt.channel, ns.Name, ok, tt.want)
		}
	}
	if ns, _ := p.Lookup("tenant/acme/x"); !ns.Presence || ns.Join != Public || ns.Match != "tenant/{tenant}/*" {
		t.Errorf("Lookup returns %+v, not the configured namespace", ns)
	}
}

func TestAuthorize(t *testing.T) {
	ann := hub.User{ID: "ann", TenantID: "acme", Channels: []string{"team/red", "team/blue-*", "t/{tenant}/u/{user}/*"}}
	bob := hub.User{ID: "bob", TenantID: "globex", Channels: []string{"team/*"}}
	anon := hub.User{}
	for _, tt := range []struct {
		name    string
		u       hub.User
		channel string
		want    error  // nil: may join
		reason  string // of the refusal
	}{
		{"public", ann, "news/sport", nil, ""},
		{"public anonymous", anon, "news/sport", nil, ""},
		{"in no namespace", ann, "misc/x", ErrForbidden, "matches no namespace"},
		{"server-only", ann, "ops/deploy", ErrForbidden, `namespace "ops/" is server-only`},
		{"own tenant", ann, "tenant/acme/orders", nil, ""},
		{"another tenant", ann, "tenant/globex/orders", ErrForbidden, "another tenant's channel"},
		{"tenant prefix of another", ann, "tenant/acmex/orders", ErrForbidden, "another tenant's channel"},
		{"no tenant", anon, "tenant/acme/orders", ErrForbidden, "the identity has no tenant"},
		{"own inbox", ann, "user/ann", nil, ""},
		{"another user's inbox", ann, "user/bob", ErrForbidden, "another user's channel"},
		{"no user id", anon, "user/ann", ErrForbidden, "the identity has no user id"},
		{"grant by name", ann, "team/red", nil, ""},
		{"name grant is exact", ann, "team/red2", ErrForbidden, "not granted by the identity"},
		{"grant by pattern", ann, "team/blue-3", nil, ""},
		{"not granted", ann, "team/green", ErrForbidden, "not granted by the identity"},
		{"catch-all grant", bob, "team/green", nil, ""},
		{"no grants", anon, "team/red", ErrForbidden, "not granted by the identity"},
		{"placeholder grant", ann, "t/acme/u/ann/feed", nil, ""},
		{"placeholders checked before grants", bob, "t/acme/u/ann/feed", ErrForbidden, "another tenant's channel"},
		{"grant placeholders bound", hub.User{ID: "ann", TenantID: "acme", Channels: []string{"t/acme/u/{user}/x"}},
			"t/acme/u/ann/feed", ErrForbidden, "not granted by the identity"},
		{"webhook allows", ann, "hook/ok", nil, ""},
		{"webhook refuses", ann, "hook/no", ErrForbidden, "refused by the backend"},
		{"webhook down", ann, "hook/down", ErrUnavailable, "backend unavailable"},
		{"webhook other tenant not asked", ann, "rooms/globex/ok", ErrForbidden, "another tenant's channel"},
		{"webhook own tenant", ann, "rooms/acme/ok", nil, ""},
		{"empty name", ann, "", ErrInvalidName, "empty name"},
		{"too long", ann, "news/" + strings.Repeat("x", 124), ErrInvalidName, "name longer than 128 bytes"},
		{"longest", ann, "news/" + strings.Repeat("x", 123), nil, ""},
		{"LF", ann, "news/a\nb", ErrInvalidName, "control character U+000A at byte 6"},
		{"CR", ann, "news/a\rb", ErrInvalidName, "control character U+000D at byte 6"},
		{"NUL", ann, "news/a\x00", ErrInvalidName, "control character U+0000 at byte 6"},
		{"DEL", ann, "news/\x7f", ErrInvalidName, "control character U+007F at byte 5"},
		{"C1", ann, "news/\u0085", ErrInvalidName, "control character U+0085 at byte 5"},
		{"not UTF-8", ann, "news/\xff", ErrInvalidName, "not UTF-8 at byte 5"},
		{"unicode", ann, "news/été-🚀", nil, ""},
	} {
		asker := &recordingAsker{}
		p := newTestPolicy(t, asker)
		err := p.Authorize(context.Background(), "demo", tt.u, "c1", []string{tt.channel})
		if tt.want == nil {
			if err != nil {
				t.Errorf("%s: Authorize(%q) = %v, want nil", tt.name, tt.channel, err)
			}
			continue
		}
		var je *JoinError
		if !errors.Is(err, tt.want) || !errors.As(err, &je) || je.Channel != tt.channel || je.Reason != tt.reason {
			t.Errorf("%s: Authorize(%q) = %v, want %v with reason %q", tt.name, tt.channel, err, tt.want, tt.reason)
		}
		if tt.want != ErrForbidden && errors.Is(err, ErrForbidden) {
			t.Errorf("%s: %v is also ErrForbidden", tt.name, err)
		}
		if tt.reason == "another tenant's channel" && len(asker.calls()) > 0 {
			t.Errorf("%s: the backend was asked about another tenant's channel: %v", tt.name, asker.calls())
		}
	}
}

func TestAuthorizeSeveral(t *testing.T) {
	ann := hub.User{ID: "ann", TenantID: "acme", Channels: []string{"team/red"}}
	ctx := context.Background()

	asker := &recordingAsker{}
	p := newTestPolicy(t, asker)
	if err := p.Authorize(ctx, "demo", ann, "c1", nil); err != nil {
		t.Fatalf("no channels: %v", err)
	}
	all := []string{"news/a", "team/red", "tenant/acme/x", "hook/ok1", "hook/ok2", "rooms/acme/ok"}
	if err := p.Authorize(ctx, "demo", ann, "c1", all); err != nil {
		t.Fatalf("Authorize(%q) = %v", all, err)
	}
	got := asker.calls()
	slices.Sort(got)
	want := []string{"demo ann c1 hook/ok1", "demo ann c1 hook/ok2", "demo ann c1 rooms/acme/ok"}
	if !slices.Equal(got, want) {
		t.Fatalf("asked %q, want %q", got, want)
	}

	// The first refused channel is named; the backend is not asked about
	// the channels after one refused without it.
	asker = &recordingAsker{}
	p = newTestPolicy(t, asker)
	err := p.Authorize(ctx, "demo", ann, "c1", []string{"news/a", "hook/ok", "ops/x", "hook/ok2"})
	var je *JoinError
	if !errors.As(err, &je) || je.Channel != "ops/x" || !errors.Is(err, ErrForbidden) {
		t.Fatalf("Authorize = %v, want ops/x forbidden", err)
	}
	if got := asker.calls(); !slices.Equal(got, []string{"demo ann c1 hook/ok"}) {
		t.Fatalf("asked %q, want only hook/ok", got)
	}

	// A backend refusal before the cheap one is the first.
	err = p.Authorize(ctx, "demo", ann, "c1", []string{"hook/no", "ops/x"})
	if !errors.As(err, &je) || je.Channel != "hook/no" || je.Namespace != "hook/" {
		t.Fatalf("Authorize = %v, want hook/no refused", err)
	}

	// Of many asks made concurrently, the first refused in order is named.
	many := []string{}
	for i := range 20 {
		many = append(many, "hook/ok"+strings.Repeat("x", i))
	}
	many = append(many[:12], append([]string{"hook/down", "hook/no1"}, many[12:]...)...)
	many = append(many, "hook/no2")
	err = p.Authorize(ctx, "demo", ann, "c1", many)
	if !errors.As(err, &je) || je.Channel != "hook/down" || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Authorize = %v, want hook/down unavailable", err)
	}
}

func TestAuthorizeBackendError(t *testing.T) {
	cause := errors.New("connection refused")
	p, err := New(Config{
		Namespaces: []Namespace{{Name: "rooms", Match: "*", Join: Webhook}},
		Webhook: askerFunc(func(context.Context, string, hub.User, string, string) (bool, error) {
			return false, cause
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Authorize(context.Background(), "demo", hub.User{ID: "u"}, "c1", []string{"r1"})
	var je *JoinError
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, cause) || !errors.As(err, &je) || je.Namespace != "rooms" {
		t.Fatalf("Authorize = %v, want ErrUnavailable wrapping the cause", err)
	}
	if want := `channels: channel "r1": backend unavailable (connection refused)`; err.Error() != want {
		t.Fatalf("message %q, want %q", err.Error(), want)
	}
}

func TestCheckNameAndValidName(t *testing.T) {
	p, err := New(Config{MaxNameLength: 5})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.CheckName("abcde"); err != nil {
		t.Errorf("CheckName(abcde) = %v", err)
	}
	if err := p.CheckName("abcdef"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("CheckName(abcdef) = %v, want ErrInvalidName", err)
	}
	for name, want := range map[string]bool{
		"a": true, "chat/room-1": true, strings.Repeat("x", 128): true, "é": true,
		"": false, strings.Repeat("x", 129): false, "a\nb": false, "a\r": false, "\x00": false, "\t": false, "\xc3": false,
	} {
		if got := ValidName(name, 0); got != want {
			t.Errorf("ValidName(%q, 0) = %v, want %v", name, got, want)
		}
	}
	if !ValidName(strings.Repeat("x", 200), 200) || ValidName(strings.Repeat("x", 201), 200) {
		t.Error("ValidName ignores its limit")
	}
}
