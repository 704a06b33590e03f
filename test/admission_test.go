package test

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// http.admission over real HTTP (issue 17 #5): with a rate of one connect
// a second, connects in a quick row past the first are answered 503 with
// a Retry-After of 1–2 s and a JSON error, before they reach the hub; the
// app's other endpoints are not limited, and /metrics counts the refusals.
func TestConnectAdmissionRefusesWith503(t *testing.T) {
	n := startPushd(t, "", "PUSHD_HTTP_ADMISSION_RATE=1", "PUSHD_HTTP_ADMISSION_BURST=1")
	first := openStream(t, n.url+"/sse/demo/connect?userId=u0")
	if f := first.frame(); field(f, "event") != "connect-finish" {
		t.Fatalf("first connect: frame %q, want connect-finish", f)
	}
	refused := 0
	for i := 1; i <= 10 && refused == 0; i++ {
		resp, err := http.Get(n.url + "/sse/demo/connect?userId=u" + strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusOK {
			resp.Body.Close() // a second went by: admitted
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("connect %d: status %d %s, want 200 or 503", i, resp.StatusCode, body)
		}
		refused++
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || s > 2 {
			t.Errorf("Retry-After %q, want 1 or 2", resp.Header.Get("Retry-After"))
		}
		var e struct{ Error string }
		if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Error, "per second") {
			t.Errorf("body %q, want a JSON error about connects per second", body)
		}
	}
	if refused == 0 {
		t.Fatal("10 connects in a row at one a second: none refused")
	}
	for range 3 {
		resp, err := http.Get(n.url + "/sse/demo/sse.js")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("sse.js: status %d, the script is not a connect", resp.StatusCode)
		}
	}
	resp, err := http.Get(n.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "pushd_connects_refused_total "+strconv.Itoa(refused)+"\n") {
		t.Errorf("metrics lack pushd_connects_refused_total %d:\n%s", refused, grepLines(string(metrics), "pushd_connects"))
	}
}

// grepLines returns the lines of s containing sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
