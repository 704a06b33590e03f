package upstream

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// BenchmarkForwardUpload forwards a 4 MiB body through a real front and
// backend server; B/op shows that memory stays bounded: a body over 64 KiB
// waits in a temporary file while it is hashed.
func BenchmarkForwardUpload(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"size":` + strconv.FormatInt(n, 10) + `}`))
	}))
	defer backend.Close()
	f, err := New(Config{URL: backend.URL, Secret: "s"})
	if err != nil {
		b.Fatal(err)
	}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.Forward(w, r, KindUpload, "file", testID)
	}))
	defer front.Close()
	body := bytes.Repeat([]byte("x"), 4<<20)
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for b.Loop() {
		resp, err := http.Post(front.URL, "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
