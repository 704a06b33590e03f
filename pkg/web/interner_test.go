package web

import (
	"strings"
	"testing"
	"unsafe"
)

func TestInternerSharesStrings(t *testing.T) {
	var in interner
	a := in.get(strings.Repeat("Mozilla/5.0 ", 3))
	b := in.get(strings.Repeat("Mozilla/5.0 ", 3))
	if a != b || unsafe.StringData(a) != unsafe.StringData(b) {
		t.Fatalf("equal strings got two copies: %q %q", a, b)
	}
	src := "GET /connect?clientId=abc HTTP/1.1"
	sub := src[len("GET /connect?clientId=") : len(src)-len(" HTTP/1.1")]
	if got := in.get(sub); got != "abc" || unsafe.StringData(got) == unsafe.StringData(sub) {
		t.Fatalf("get(%q) = %q, sharing the request's bytes", sub, got)
	}
	long := strings.Repeat("x", maxSharedLen+1)
	if got := in.get(long); got != long || unsafe.StringData(got) == unsafe.StringData(long) {
		t.Fatal("a long string is not copied")
	}
	if len(in.strs) != 2 {
		t.Fatalf("table holds %d strings, want 2 (the long one is not kept)", len(in.strs))
	}
}

func TestInternerSharesFields(t *testing.T) {
	var in interner
	m1 := in.fields([]string{"Accept", "text/event-stream", "User-Agent", "ua"})
	m2 := in.fields([]string{"Accept", "text/event-stream", "User-Agent", "ua"})
	m3 := in.fields([]string{"Accept", "text/event-stream", "User-Agent", "other"})
	if len(m1) != 2 || m1["User-Agent"] != "ua" || m3["User-Agent"] != "other" {
		t.Fatalf("fields: %v, %v", m1, m3)
	}
	m1["probe"] = "x" // only to tell the maps apart
	if m2["probe"] != "x" {
		t.Fatal("the same pairs got two maps")
	}
	if m3["probe"] != "" {
		t.Fatal("different pairs got the same map")
	}
	if in.fields(nil) != nil {
		t.Fatal("no pairs gave a map")
	}
}

func TestInternerBounded(t *testing.T) {
	var in interner
	v := strings.Repeat("v", maxSharedLen)
	for i := range 2 * maxSharedBytes / maxSharedLen {
		s := v[:maxSharedLen-4] + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676%26)) + "."
		if got := in.get(s); got != s {
			t.Fatalf("get = %q, want %q", got, s)
		}
		if in.bytes > maxSharedBytes {
			t.Fatalf("table holds %d bytes, over %d", in.bytes, maxSharedBytes)
		}
	}
}
