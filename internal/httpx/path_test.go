package httpx

import (
	"strings"
	"testing"
)

func TestValidPath(t *testing.T) {
	for _, p := range []string{"chat", "a.b", "v1~x", "A-Z_09", "...", strings.Repeat("a", MaxPathLen)} {
		if !ValidPath(p) {
			t.Errorf("ValidPath(%q) = false", p)
		}
	}
	for _, p := range []string{"", ".", "..", "a/b", "../admin", `a\b`, "%2e%2e", "a%2Fb", "a b", "a?b", "a#b",
		"ä", "a\x00b", "a\nb", "a+b", strings.Repeat("a", MaxPathLen+1)} {
		if ValidPath(p) {
			t.Errorf("ValidPath(%q) = true", p)
		}
	}
}
