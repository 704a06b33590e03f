package web

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/pushd/pushd/pkg/auth"
	"github.com/pushd/pushd/pkg/hub"
)

// FuzzConnectRequest feeds arbitrary connect queries and JSON bodies to the
// parameter parsing: it never panics, a body over 64 KiB is refused, and a
// request it accepts has a lifetime that is unlimited (-1), the client's
// (0) or positive, and keeps only allowlisted telemetry without the
// credential parameter, within the size bounds.
func FuzzConnectRequest(f *testing.F) {
	f.Add("sessionDuration=12&keepaliveTime=900000&listeners=a,b&ack=1", `{"channel":"c1","clientId":7}`)
	f.Add("keepaliveTime=1e300&accessTime=NaN", ``)
	f.Add("keepaliveTime=9223372036854775807&usedJSHeapSize=-1e19", `{"keepaliveTime":null}`)
	f.Add("keepaliveTime=1&keepaliveTime=2", `[1,2]`)
	f.Add("access_token=abc&locationHref=https%3A%2F%2Fa.example%2F%3Faccess_token%3Dabc", `{"access_token":"abc","password":"x"}`)
	f.Add("clientId="+strings.Repeat("c", 2000), `{"screen":"`+strings.Repeat("s", 70<<10)+`"}`)
	h := &Handler{cfg: Config{MaxBody: 4096}, secrets: newSecrets(auth.Credentials{Query: []string{"access_token"}})}
	f.Fuzz(func(t *testing.T, query, body string) {
		method := http.MethodGet
		if body != "" {
			method = http.MethodPost
		}
		r := httptest.NewRequest(method, "/sse/demo/connect", strings.NewReader(body))
		r.URL.RawQuery = query
		r.Header.Set("Content-Type", "application/json")
		params, err := h.connectParams(httptest.NewRecorder(), r)
		if err != nil {
			return
		}
		if len(body) > maxCallBody && strings.TrimSpace(body[maxCallBody:]) != "" {
			t.Fatalf("a body of %d bytes was accepted", len(body))
		}
		req, err := h.connectRequest(r, params, hub.User{ID: "u"})
		if err != nil {
			return
		}
		if req.Keepalive < -1 {
			t.Fatalf("query %q body %q: keepalive %v", query, body, req.Keepalive)
		}
		size := 0
		for k, v := range req.Info.Params {
			size += len(k) + len(v)
			if !slices.Contains(telemetryParams, k) || k == "access_token" || len(v) > maxKeptValue {
				t.Fatalf("kept parameter %q of %d bytes", k, len(v))
			}
		}
		for k, v := range req.Info.Headers {
			size += len(k) + len(v)
		}
		if size > maxKeptBytes || strings.ContainsAny(req.Info.LocationHref, "?#") {
			t.Fatalf("kept %d bytes, locationHref %q", size, req.Info.LocationHref)
		}
	})
}
