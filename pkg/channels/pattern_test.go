package channels

import (
	"strings"
	"testing"

	"github.com/pushd/pushd/pkg/hub"
)

func TestPatternMatch(t *testing.T) {
	acme := hub.User{ID: "ann", TenantID: "acme"}
	for _, tt := range []struct {
		pattern, name string
		structural    bool // placeholders match any value
		bound         bool // placeholders are acme's and ann's
	}{
		{"*", "", true, true},
		{"*", "anything/at/all", true, true},
		{"news", "news", true, true},
		{"news", "news2", false, false},
		{"news/*", "news/", true, true},
		{"news/*", "news", false, false},
		{"*-eu", "orders-eu", true, true},
		{"*-eu", "orders-eu-2", false, false},
		{"a*b*c", "abc", true, true},
		{"a*b*c", "aXbYbZc", true, true},
		{"a*b*c", "aXbYc-", false, false},
		{"a**b", "ab", true, true},
		{"t/{tenant}", "t/acme", true, true},
		{"t/{tenant}", "t/globex", true, false},
		{"t/{tenant}", "t/", false, false},
		{"t/{tenant}", "t/acme/x", false, false},
		{"t/{tenant}/*", "t/acme/x/y", true, true},
		{"t/{tenant}/*", "t/acmeX/y", true, false},
		{"{tenant}/{user}", "acme/ann", true, true},
		{"{tenant}/{user}", "acme/bob", true, false},
		{"{tenant}/{user}", "acme/ann/", false, false},
		{"x-{user}", "x-ann", true, true},
		{"x-{user}", "x-", false, false},
	} {
		p, err := parsePattern(tt.pattern)
		if err != nil {
			t.Fatalf("parsePattern(%q): %v", tt.pattern, err)
		}
		if got := p.match(tt.name, binding{}); got != tt.structural {
			t.Errorf("%q structurally matches %q: %v, want %v", tt.pattern, tt.name, got, tt.structural)
		}
		if got := p.match(tt.name, bindAll(&acme)); got != tt.bound {
			t.Errorf("%q matches %q for acme/ann: %v, want %v", tt.pattern, tt.name, got, tt.bound)
		}
	}
}

func TestPatternBindingWithoutValues(t *testing.T) {
	p, err := parsePattern("t/{tenant}/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, tenant := range []string{"", "a/b"} {
		if p.match("t/a/b/c", binding{tenant: tenant, bindTenant: true}) {
			t.Errorf("tenant %q matches a placeholder", tenant)
		}
	}
}

func TestPatternLongNames(t *testing.T) {
	// Past the stack buffer, and a pattern that would make a backtracking
	// matcher try every split.
	p, err := parsePattern("a*a*a*a*a*a*b")
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("a", 1000)
	if p.match(long, binding{}) || !p.match(long+"b", binding{}) {
		t.Fatal("wrong match of a long name")
	}
}

func TestGranted(t *testing.T) {
	u := hub.User{ID: "ann", TenantID: "acme", Channels: []string{"exact", "pre/*", "own/{user}", "{bad}", "x}"}}
	for name, want := range map[string]bool{
		"exact": true, "exact2": false, "pre/1": true, "pre": false,
		"own/ann": true, "own/bob": false,
		"{bad}": false, "x}": false, // malformed patterns grant nothing
	} {
		if got := granted(&u, name); got != want {
			t.Errorf("granted(%q) = %v, want %v", name, got, want)
		}
	}
}
