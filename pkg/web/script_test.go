package web_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	sseclient "github.com/pushd/pushd/clients/js"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/web"
)

// rawClient leaves Accept-Encoding and the body as the test sets and gets
// them.
var rawClient = &http.Client{Transport: &http.Transport{DisableCompression: true}}

// fetchRaw sends a request with the given header pairs and returns the
// answer with its body read.
func fetchRaw(t *testing.T, method, target string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := rawClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// decoded is body, gunzipped when the answer says gzip.
func decoded(t *testing.T, resp *http.Response, body []byte) []byte {
	t.Helper()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		return body
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("bad gzip: %v", err)
	}
	return b
}

func TestScriptEncodingFollowsAcceptEncoding(t *testing.T) {
	a := newTestApp(t, hub.Config{}, web.Config{})
	script, err := sseclient.FS.ReadFile("sse.js")
	if err != nil {
		t.Fatal(err)
	}
	module := string(script)
	for _, tc := range []struct {
		accept string
		gzip   bool
	}{
		{"", false},
		{"identity", false},
		{"gzip", true},
		{"GZIP", true},
		{"x-gzip", true},
		{"gzip, deflate, br, zstd", true},
		{"br;q=1.0, gzip;q=0.5", true},
		{"gzip;q=0", false},
		{"gzip; q=0.000", false},
		{"gzip;q=nonsense", false},
		{"*", true},
		{"*;q=0", false},
		{"gzip;q=0, *", false},
		{"br, *;q=0.1", true},
		{"deflate, br", false},
	} {
		resp, body := fetchRaw(t, http.MethodGet, a.base, "Accept-Encoding", tc.accept)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%q: status %d", tc.accept, resp.StatusCode)
		}
		if got := resp.Header.Get("Content-Encoding") == "gzip"; got != tc.gzip {
			t.Errorf("Accept-Encoding %q: gzip %v, want %v", tc.accept, got, tc.gzip)
		}
		if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Accept-Encoding") {
			t.Errorf("%q: Vary %q lacks Accept-Encoding", tc.accept, resp.Header.Values("Vary"))
		}
		if got := string(decoded(t, resp, body)); got != module {
			t.Errorf("%q: body is not clients/js/sse.js (%d bytes, want %d)", tc.accept, len(got), len(module))
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/javascript") {
			t.Errorf("%q: Content-Type %q", tc.accept, ct)
		}
	}
	resp, body := fetchRaw(t, http.MethodGet, a.base, "Accept-Encoding", "gzip")
	t.Logf("sse.js: %d bytes, %d gzipped", len(module), len(body))
	if len(body)*3 > len(module) {
		t.Errorf("gzip answer is %d bytes of %d: not compressed", len(body), len(module))
	}
	if resp.ContentLength != int64(len(body)) {
		t.Errorf("Content-Length %d, body %d", resp.ContentLength, len(body))
	}
}

// exportStatement matches a line that starts an export statement.
var exportStatement = regexp.MustCompile(`(?m)^\s*export\b`)

func TestClassicScriptIsTheModuleWithoutItsExport(t *testing.T) {
	a := newTestApp(t, hub.Config{}, web.Config{})
	source, err := sseclient.FS.ReadFile("sse.js")
	if err != nil {
		t.Fatal(err)
	}
	if got := exportStatement.FindAll(source, -1); len(got) != 1 || !bytes.HasSuffix(bytes.TrimSpace(source), []byte("\nexport default Sse")) {
		t.Fatalf("clients/js/sse.js has export statements %q; want exactly one, the final export default Sse", got)
	}
	for _, target := range []string{a.base + "?script-type=script", a.base + "/sse.js?script-type=SCRIPT", a.base + "/?script-type=classic"} {
		for _, accept := range []string{"", "gzip"} {
			resp, body := fetchRaw(t, http.MethodGet, target, "Accept-Encoding", accept)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %d", target, resp.StatusCode)
			}
			classic := decoded(t, resp, body)
			if exportStatement.Match(classic) {
				t.Errorf("%s (%q): the classic script has an export statement", target, accept)
			}
			if !bytes.Contains(classic, []byte("window.Sse = Sse")) {
				t.Errorf("%s (%q): the classic script does not set window.Sse", target, accept)
			}
			if want := bytes.TrimSuffix(source, []byte("export default Sse")); !bytes.Equal(classic, want) {
				t.Errorf("%s (%q): %d bytes, want the %d of sse.js up to its export", target, accept, len(classic), len(want))
			}
		}
	}
	for _, target := range []string{a.base, a.base + "/sse.js", a.base + "?script-type=module", a.base + "?script-type=MODULE"} {
		resp, body := fetchRaw(t, http.MethodGet, target)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, source) {
			t.Errorf("%s: %d, %d bytes; want sse.js as it is (%d bytes)", target, resp.StatusCode, len(body), len(source))
		}
	}
}

func TestScriptRevalidatesWithETag(t *testing.T) {
	a := newTestApp(t, hub.Config{}, web.Config{})
	tags := map[string]string{}
	for _, v := range []struct{ name, target, accept string }{
		{"module", a.base, ""},
		{"module gzip", a.base + "/sse.js", "gzip"},
		{"classic", a.base + "?script-type=script", ""},
		{"classic gzip", a.base + "/?script-type=script", "gzip"},
		{"types", a.base + "/sse.d.ts", ""},
		{"types gzip", a.base + "/sse.d.ts", "gzip"},
	} {
		resp, _ := fetchRaw(t, http.MethodGet, v.target, "Accept-Encoding", v.accept)
		tag := resp.Header.Get("ETag")
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(tag, `"`) {
			t.Fatalf("%s: %d, ETag %q", v.name, resp.StatusCode, tag)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("%s: Cache-Control %q, want no-cache (store, revalidate)", v.name, cc)
		}
		for other, o := range tags {
			if o == tag {
				t.Errorf("%s and %s share ETag %s", v.name, other, tag)
			}
		}
		tags[v.name] = tag

		resp, body := fetchRaw(t, http.MethodGet, v.target, "Accept-Encoding", v.accept, "If-None-Match", tag)
		if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
			t.Errorf("%s: If-None-Match %s: %d with %d bytes, want 304 and no body", v.name, tag, resp.StatusCode, len(body))
		}
		resp, _ = fetchRaw(t, http.MethodGet, v.target, "Accept-Encoding", v.accept, "If-None-Match", `"other", W/`+tag)
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("%s: If-None-Match with a list and a weak tag: %d, want 304", v.name, resp.StatusCode)
		}
		resp, _ = fetchRaw(t, http.MethodGet, v.target, "Accept-Encoding", v.accept, "If-None-Match", `"stale"`)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: a stale ETag got %d, want 200", v.name, resp.StatusCode)
		}
	}
	// The ETag of one encoding does not validate the other.
	resp, _ := fetchRaw(t, http.MethodGet, a.base, "Accept-Encoding", "gzip", "If-None-Match", tags["module"])
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("gzip request with the plain ETag: %d %q, want 200 gzip", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
}

func TestTypesServedBesideScript(t *testing.T) {
	a := newTestApp(t, hub.Config{}, web.Config{})
	want, err := sseclient.FS.ReadFile("sse.d.ts")
	if err != nil {
		t.Fatal(err)
	}
	for _, accept := range []string{"", "gzip"} {
		resp, body := fetchRaw(t, http.MethodGet, a.base+"/sse.d.ts", "Accept-Encoding", accept)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("sse.d.ts (%q): %d %s", accept, resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/typescript") {
			t.Errorf("sse.d.ts: Content-Type %q", ct)
		}
		if !bytes.Equal(decoded(t, resp, body), want) {
			t.Errorf("sse.d.ts (%q): not clients/js/sse.d.ts", accept)
		}
	}
	resp, body := fetchRaw(t, http.MethodHead, a.base+"/sse.d.ts")
	if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.ContentLength != int64(len(want)) {
		t.Errorf("HEAD sse.d.ts: %d, %d bytes, Content-Length %d", resp.StatusCode, len(body), resp.ContentLength)
	}
	for _, target := range []string{a.base, a.base + "/sse.d.ts"} {
		resp, body = fetchRaw(t, http.MethodPost, target)
		jsonError(t, "POST "+target, http.StatusMethodNotAllowed, resp.StatusCode, string(body))
	}
}
