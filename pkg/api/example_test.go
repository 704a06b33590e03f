package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/pushd/pushd/pkg/api"
	"github.com/pushd/pushd/pkg/hub"
)

// A batch of two personal sends, the second refused: each item gets its
// own result, in order.
func Example_batch() {
	h, _ := hub.New(hub.Config{App: "hr", NodeID: "n1"})
	defer func() { _ = h.Shutdown(context.Background()) }()
	c, _ := h.Connect(context.Background(), hub.ConnectRequest{User: hub.User{ID: "42"}})
	defer func() {
		_, _ = h.Disconnect(context.Background(), hub.Target{ConnectionIDs: []string{c.ID()}}, hub.ReasonKicked)
	}()
	handler, _ := api.New(api.Config{Apps: map[string]api.App{"hr": {Hub: h, Keys: []string{"key"}}}})
	srv := httptest.NewServer(handler)
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/apps/hr/send", strings.NewReader(`[
		{"to":{"userIds":["42"]},"event":"pay","data":{"n":1}},
		{"to":{"userIds":["43"]},"event":"pay\n","data":2}
	]`))
	req.Header.Set("Authorization", "Bearer key")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	fmt.Print(resp.StatusCode, " ", string(answer))
	// Output: 200 [{"delivered":1,"stored":false},{"error":"hub: invalid event: event name contains CR, LF or NUL","status":400}]
}
