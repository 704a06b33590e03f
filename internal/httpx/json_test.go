package httpx

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// errorOf decodes the {"error": …} answer of w, failing the test when it
// is not one.
func errorOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var e struct{ Error string }
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
		t.Fatalf("not a JSON error: %q (%v)", w.Body, err)
	}
	return e.Error
}

func TestWriteErrorDropsContentLength(t *testing.T) {
	w := httptest.NewRecorder()
	w.Header().Set("Content-Length", "1000")
	WriteError(w, http.StatusTeapot, `say "hi" <b>`)
	if w.Code != http.StatusTeapot {
		t.Fatalf("status %d", w.Code)
	}
	if cl := w.Header().Get("Content-Length"); cl != "" {
		t.Errorf("Content-Length %q kept", cl)
	}
	if msg := errorOf(t, w); msg != `say "hi" <b>` {
		t.Errorf("error %q", msg)
	}
}

func TestReadJSON(t *testing.T) {
	type body struct {
		A int `json:"a"`
	}
	for _, c := range []struct {
		name   string
		in     string
		strict bool
		status int    // 0: accepted
		text   string // in the error
	}{
		{"ok", `{"a": 1}`, true, 0, ""},
		{"trailing space", "{\"a\": 1}\n\t ", true, 0, ""},
		{"unknown field, lax", `{"a": 1, "b": 2}`, false, 0, ""},
		{"unknown field, strict", `{"a": 1, "b": 2}`, true, http.StatusBadRequest, `unknown field "b"`},
		{"trailing value", `{"a": 1} {}`, false, http.StatusBadRequest, "data after the JSON value"},
		{"empty", ``, false, http.StatusBadRequest, "empty body"},
		{"malformed", `{"a": `, false, http.StatusBadRequest, "malformed JSON"},
		{"wrong type", `{"a": "x"}`, false, http.StatusBadRequest, "malformed JSON"},
		{"too big", `{"a": 1` + strings.Repeat(" ", 64) + `}`, false, http.StatusRequestEntityTooLarge, "body over 32 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(c.in))
			var v body
			ok := ReadJSON(w, r, &v, 32, c.strict)
			if c.status == 0 {
				if !ok || v.A != 1 {
					t.Fatalf("refused (%v, %+v): %d %s", ok, v, w.Code, w.Body)
				}
				return
			}
			if ok {
				t.Fatalf("accepted %q", c.in)
			}
			if w.Code != c.status {
				t.Errorf("status %d, want %d", w.Code, c.status)
			}
			if msg := errorOf(t, w); !strings.Contains(msg, c.text) {
				t.Errorf("error %q, want it to contain %q", msg, c.text)
			}
		})
	}
}

func TestWrapOK(t *testing.T) {
	b, err := json.Marshal(WrapOK([]int{1}))
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"success":true,"code":200,"data":[1],"message":null,"errorMessage":null}`
	if string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
}
