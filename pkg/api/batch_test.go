package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/history"
	"github.com/pushd/pushd/pkg/hub"
)

// A batch whose answer does not fit after the body in its buffer (here
// answers with positions, twice the guess per item) leaves a buffer big
// enough for both, for the pool: the next batch of its size allocates
// neither.
func TestBatchAnswerRoomKept(t *testing.T) {
	store, err := history.NewMemory(history.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	hb, err := hub.New(hub.Config{App: "demo", NodeID: "n1", History: store, StreamHistory: func(string) (history.Options, bool) {
		return history.Options{Size: 10, TTL: time.Hour}, true
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = hb.Shutdown(context.Background()) }()
	h, err := New(Config{Apps: map[string]App{"demo": {Hub: hb, Keys: []string{"k"}}}})
	if err != nil {
		t.Fatal(err)
	}
	items := make([]string, 100)
	for i := range items {
		items[i] = sendBody(i, i)
	}
	body := []byte("[" + strings.Join(items, ",") + "]")
	bp := &body // no room after the body
	w := httptest.NewRecorder()
	h.sendBatch(w, httptest.NewRequest(http.MethodPost, "/api/v1/apps/demo/send", nil), hb, body, bp)
	answer := w.Body.Len()
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"positions"`) || answer <= len(items)*48 {
		t.Fatalf("status %d, %d bytes: %.200s; want answers with positions, over the guess", w.Code, answer, w.Body.String())
	}
	if room := cap(*bp); room < len(body)+answer {
		t.Fatalf("buffer of %d bytes left for the pool, want room for the body and the answer, %d+%d", room, len(body), answer)
	}
}
