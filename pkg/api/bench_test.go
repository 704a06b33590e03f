package api

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/pushd/pushd/pkg/hub"
)

// discardWriter is a ResponseWriter that keeps the status and drops the
// body, so the benchmark counts the handler's own work.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }

// BenchmarkSendToUser measures one POST …/send to a user (who has no
// connection here: the figure is the API's decoding, validation, routing
// and answer, without a socket write). Run it with
//
//	go test -run x -bench SendToUser -benchmem ./pkg/api/
func BenchmarkSendToUser(b *testing.B) {
	h, err := hub.New(hub.Config{App: "demo", NodeID: "n1"})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = h.Shutdown(context.Background()) }()
	handler, err := New(Config{Apps: map[string]App{"demo": {Hub: h, Keys: []string{"k1"}}}})
	if err != nil {
		b.Fatal(err)
	}
	const body = `{"to":{"userIds":["u42"]},"event":"bench","data":{"seq":1,"sentAt":1764487000000000}}`
	b.ReportAllocs()
	for b.Loop() {
		r, _ := http.NewRequest(http.MethodPost, "/api/v1/apps/demo/send", strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer k1")
		w := &discardWriter{header: http.Header{}}
		handler.ServeHTTP(w, r)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}
