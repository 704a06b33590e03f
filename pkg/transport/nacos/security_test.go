package nacos

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/await"
)

// stallingBody sends head zero bytes, then blocks until ctx ends (and then
// fails): a client that has not finished sending.
type stallingBody struct {
	ctx  context.Context
	head int64
	sent atomic.Int64
}

func (b *stallingBody) Read(p []byte) (int, error) {
	left := b.head - b.sent.Load()
	if left <= 0 {
		<-b.ctx.Done()
		return 0, io.ErrUnexpectedEOF
	}
	n := int(min(int64(len(p)), left))
	clear(p[:n])
	b.sent.Add(int64(n))
	return n, nil
}

// Attack (issue 10 #11): 16 MiB bodies, unsigned or signed with a wrong
// secret, eight at once, were read into memory before the signature was
// checked (8 → 219 MB). The headers sign the body's length and hash now,
// and each request is refused while its sender is still stuck after the
// first 64 KiB of the body.
func TestLargeUnauthenticatedBodyRefusedUnread(t *testing.T) {
	nodes, _ := staticCluster(t, 1)
	n := nodes[0]
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	const declared = 16 << 20
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel() // ends the body
			body := &stallingBody{ctx: ctx, head: 64 << 10}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+n.tr.Addr().String()+PathDeliver, body)
			if err != nil {
				t.Error(err)
				return
			}
			req.ContentLength = declared
			if i%2 == 1 { // the headers of a signed request, with another secret
				newSigner("another-secret-0123456789").signRequest(req, "n9", "n1", randomHex(16), time.Now(), make([]byte, declared))
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("request %d: no answer while its body was unfinished: %v", i, err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("request %d: status %d, want 401", i, resp.StatusCode)
			}
			if sent := body.sent.Load(); sent > 64<<10 {
				t.Errorf("request %d: %d bytes of the body sent", i, sent)
			}
		})
	}
	wg.Wait()
	if n.handler.total() != 0 {
		t.Fatal("the handler was called")
	}
}

// Attack (issue 10 #11): a signed request captured before the receiving
// node restarted was accepted again after the restart, within the replay
// window: the nonces it had seen lived in the old process's memory. A node
// now refuses requests signed before it started.
func TestReplayAfterRestartRefused(t *testing.T) {
	disc, err := NewStatic()
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"app":"demo","target":{"all":true},"event":{"name":"pay","data":"1000"}}`)
	do := func(req *http.Request) int {
		t.Helper()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	before := startNode(t, Config{NodeID: "n1", Discovery: disc}, &countingHandler{count: 1})
	signedAt := time.Now()
	captured := signedRequest(t, before, testSecret, signedAt, randomHex(16), body)
	if status := do(captured); status != http.StatusOK {
		t.Fatalf("genuine request: status %d", status)
	}
	_ = before.tr.Close()
	// Timestamps have millisecond precision: let the clock pass the signing
	// millisecond, as any real restart does.
	await.True(t, time.Second, "clock past the signing millisecond", func() bool {
		return time.Now().UnixMilli() > signedAt.UnixMilli()
	})

	after := startNode(t, Config{NodeID: "n1", Discovery: disc}, &countingHandler{count: 1})
	replayed, err := http.NewRequest(http.MethodPost, "http://"+after.tr.Addr().String()+PathDeliver, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	replayed.Header = captured.Header.Clone()
	if status := do(replayed); status != http.StatusUnauthorized {
		t.Fatalf("replay after the restart: status %d, want 401", status)
	}
	if after.handler.total() != 0 {
		t.Fatal("the restarted node's handler was called for the replay")
	}
	if status := do(signedRequest(t, after, testSecret, time.Now(), randomHex(16), body)); status != http.StatusOK {
		t.Fatalf("fresh request after the restart: status %d", status)
	}
}
