package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pushd/pushd/pkg/hub"
)

// FuzzConnectRequest feeds arbitrary connect queries and JSON bodies to the
// parameter parsing: it never panics, and a request it accepts has a
// lifetime that is unlimited (-1), the client's (0) or positive.
func FuzzConnectRequest(f *testing.F) {
	f.Add("sessionDuration=12&keepaliveTime=900000&listeners=a,b&ack=1", `{"channel":"c1","clientId":7}`)
	f.Add("keepaliveTime=1e300&accessTime=NaN", ``)
	f.Add("keepaliveTime=9223372036854775807&usedJSHeapSize=-1e19", `{"keepaliveTime":null}`)
	f.Add("keepaliveTime=1&keepaliveTime=2", `[1,2]`)
	h := &Handler{cfg: Config{MaxBody: 4096}}
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
		req, err := h.connectRequest(r, params, hub.User{ID: "u"})
		if err != nil {
			return
		}
		if req.Keepalive < -1 {
			t.Fatalf("query %q body %q: keepalive %v", query, body, req.Keepalive)
		}
	})
}
