package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/web"
)

// A call on another identity's connection is told so (with the seed's
// 404); an id nobody holds stays "connectionId not exist".
func TestForeignConnectionIsNamed(t *testing.T) {
	a := newTestApp(t, hub.Config{}, web.Config{})
	s := a.connectAs(t, "alice@acme", "")
	for _, tc := range []struct {
		what, user, id, want string
	}{
		{"another tenant", "alice@", s.id, "belongs to another user"},
		{"another user", "bob@acme", s.id, "belongs to another user"},
		{"unknown id", "alice@acme", "nope", "connectionId not exist"},
	} {
		for _, kind := range []string{"message", "upload"} {
			status, _, body := call(t, http.MethodPost, a.base+"/connect/"+kind+"/x.do?connectionId="+tc.id,
				"application/json", strings.NewReader(`{}`), "X-User", tc.user)
			jsonError(t, tc.what, http.StatusNotFound, status, body)
			if !strings.Contains(body, tc.want) {
				t.Errorf("%s %s: %s, want %q", tc.what, kind, body, tc.want)
			}
		}
	}
	status, _, body := call(t, http.MethodPost, a.base+"/connect/message/x.do?connectionId="+s.id,
		"application/json", strings.NewReader(`{}`), "X-User", "alice@acme")
	if status != http.StatusOK {
		t.Errorf("the owner's call: %d %s", status, body)
	}
}
