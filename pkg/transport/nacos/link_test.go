package nacos

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/hubwire"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/signature"
)

// openLinkOf returns the link n holds to peer, or nil.
func openLinkOf(n *node, peer string) *clientLink {
	n.tr.linksMu.Lock()
	defer n.tr.linksMu.Unlock()
	if slot := n.tr.clientLinks[peer]; slot != nil && slot.link != nil && !slot.link.isClosed() {
		return slot.link
	}
	return nil
}

// TestLinkCarriesRequests: concurrent sends and surveys between two nodes
// all go over one link per direction, with exact counts and replies, and
// none over per-request HTTP.
func TestLinkCarriesRequests(t *testing.T) {
	nodes, _ := staticCluster(t, 3, 5)
	const sends = 400
	var wg sync.WaitGroup
	errs := make(chan string, 2*sends)
	for i := range sends {
		from, want := nodes[i%2], []int{5, 3}[i%2]
		wg.Go(func() {
			got, err := from.tr.Deliver(context.Background(), "demo", hub.Target{UserIDs: []string{"u"}},
				hub.Event{Name: "e", Data: strings.Repeat("x", i)})
			if err != nil || got != want {
				errs <- "deliver: " + err2s(err)
			}
			reps, err := from.tr.Survey(context.Background(), "demo", hub.Request{Op: hub.OpStats})
			if err != nil || len(reps) != 1 || reps[0].Count != want || string(reps[0].Data) != `["user-of-demo"]` {
				errs <- "survey: " + err2s(err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	for i, n := range nodes {
		if openLinkOf(n, nodes[1-i].tr.Self().NodeID) == nil {
			t.Fatalf("n%d holds no link to its peer", i+1)
		}
		if l, h := n.tr.served.link.Load(), n.tr.served.http.Load(); l != sends || h != 0 {
			t.Fatalf("n%d served %d requests over its link and %d over HTTP; want %d and 0", i+1, l, h, sends)
		}
	}
	if got := nodes[1].handler.lastEv.Data; len(got) >= sends {
		t.Fatalf("event data of %d bytes", len(got))
	}
}

func err2s(err error) string {
	if err == nil {
		return "wrong result"
	}
	return err.Error()
}

// TestLinkToNodeWithoutLinks: a node that serves no links (a version
// before them, here PerRequestHTTP) is reached over HTTP with exact
// counts, and reaches link-serving nodes over HTTP too.
func TestLinkToNodeWithoutLinks(t *testing.T) {
	disc, _ := NewStatic()
	newer := startNode(t, Config{NodeID: "new", Discovery: disc}, &countingHandler{count: 2})
	older := startNode(t, Config{NodeID: "old", Discovery: disc, PerRequestHTTP: true}, &countingHandler{count: 7})
	if err := disc.SetPeers(newer.tr.Self(), older.tr.Self()); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if got, err := newer.tr.Deliver(context.Background(), "demo", hub.Target{All: true}, hub.Event{Name: "e"}); err != nil || got != 7 {
			t.Fatalf("new → old: %d, %v; want 7", got, err)
		}
		if got, err := older.tr.Deliver(context.Background(), "demo", hub.Target{All: true}, hub.Event{Name: "e"}); err != nil || got != 2 {
			t.Fatalf("old → new: %d, %v; want 2", got, err)
		}
	}
	if openLinkOf(newer, "old") != nil || older.tr.served.http.Load() != 3 || newer.tr.served.http.Load() != 3 {
		t.Fatalf("want HTTP both ways: link %v, old served %d, new served %d over HTTP",
			openLinkOf(newer, "old") != nil, older.tr.served.http.Load(), newer.tr.served.http.Load())
	}
}

// TestLinkFramesStayWithinTheBodyLimit: entries are split over frames of
// at most MaxBodyBytes, and a request larger than that fails alone.
func TestLinkFramesStayWithinTheBodyLimit(t *testing.T) {
	disc, _ := NewStatic()
	a := startNode(t, Config{NodeID: "a", Discovery: disc, MaxBodyBytes: 2048}, &countingHandler{count: 1})
	b := startNode(t, Config{NodeID: "b", Discovery: disc, MaxBodyBytes: 2048}, &countingHandler{count: 1})
	if err := disc.SetPeers(a.tr.Self(), b.tr.Self()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 60 {
		wg.Go(func() {
			got, _ := a.tr.Deliver(context.Background(), "demo", hub.Target{All: true}, hub.Event{Name: "e", Data: strings.Repeat("d", 600)})
			mu.Lock()
			total += got
			mu.Unlock()
		})
	}
	wg.Wait()
	if total != 60 {
		t.Fatalf("%d of 60 sends counted", total)
	}
	if got, _ := a.tr.Deliver(context.Background(), "demo", hub.Target{All: true}, hub.Event{Name: "e", Data: strings.Repeat("d", 4096)}); got != 0 {
		t.Fatalf("a send over the limit counted %d", got)
	}
	if got, err := a.tr.Deliver(context.Background(), "demo", hub.Target{All: true}, hub.Event{Name: "e"}); got != 1 || err != nil {
		t.Fatalf("after the oversized send: %d, %v", got, err)
	}
	if openLinkOf(a, "b") == nil {
		t.Fatal("the link did not survive")
	}
}

// TestLinkFollowsAPeerRestart: when a peer stops, its link closes; the
// node started again (same id, new address) is reached on a new link.
func TestLinkFollowsAPeerRestart(t *testing.T) {
	disc, _ := NewStatic()
	a := startNode(t, Config{NodeID: "a", Discovery: disc}, &countingHandler{count: 1})
	b := startNode(t, Config{NodeID: "b", Discovery: disc}, &countingHandler{count: 4})
	if err := disc.SetPeers(a.tr.Self(), b.tr.Self()); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.tr.Deliver(context.Background(), "demo", hub.Target{All: true}, hub.Event{Name: "e"}); got != 4 {
		t.Fatalf("before the restart: %d", got)
	}
	first := openLinkOf(a, "b")
	b.stop()
	<-b.done
	b.done <- nil // for the cleanup
	select {
	case <-first.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the link outlived its peer's Run")
	}
	waitFor(t, 5*time.Second, "the ended link's slot dropped", func() bool {
		a.tr.linksMu.Lock()
		defer a.tr.linksMu.Unlock()
		return a.tr.clientLinks["b"] == nil
	})
	b2 := startNode(t, Config{NodeID: "b", Discovery: disc}, &countingHandler{count: 9})
	if err := disc.SetPeers(a.tr.Self(), b2.tr.Self()); err != nil {
		t.Fatal(err)
	}
	if got, err := a.tr.Deliver(context.Background(), "demo", hub.Target{All: true}, hub.Event{Name: "e"}); got != 9 || err != nil {
		t.Fatalf("after the restart: %d, %v; want 9", got, err)
	}
	if l := openLinkOf(a, "b"); l == nil || l == first {
		t.Fatal("no new link to the restarted peer")
	}
}

// rawPeer is the test's own end of a link: it speaks the protocol with the
// package's signer, as a peer or an attacker would.
type rawPeer struct {
	conn net.Conn
	br   *bufio.Reader
	w    *frameWriter
	rd   *frameReader
}

// handshake opens a link to n as node from, signed with secret and nonce;
// it returns the HTTP status and, on 101, the link.
func handshake(t *testing.T, n *node, secret, from, nonce string, edit func(*http.Request)) (int, *rawPeer) {
	t.Helper()
	conn, err := net.Dial("tcp", n.tr.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	req, _ := http.NewRequest(http.MethodGet, "http://"+n.tr.Addr().String()+PathLink, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", linkProtocol)
	s := newSigner(secret)
	s.signRequest(req, from, n.tr.Self().NodeID, nonce, time.Now(), nil)
	if edit != nil {
		edit(req)
	}
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return resp.StatusCode, nil
	}
	if err := s.verifyReply(resp.Header, nonce, n.tr.Self().NodeID, 101, nil); err != nil {
		t.Fatalf("the 101 is not signed for our nonce: %v", err)
	}
	to := n.tr.Self().NodeID
	return 101, &rawPeer{conn: conn, br: br,
		w:  &frameWriter{conn: conn, timeout: 5 * time.Second, maxFrame: 1 << 20, mac: s.frameMAC(dirRequests, nonce, from, to)},
		rd: &frameReader{r: br, maxFrame: 1 << 20, mac: s.frameMAC(dirReplies, nonce, from, to)}}
}

// deliverEntry encodes one deliver request to all connections.
func deliverEntry(id uint64) func([]byte) []byte {
	return func(b []byte) []byte {
		return appendRequest(b, &linkRequest{id: id, app: "demo", target: hub.Target{All: true}, deliver: true, event: hub.Event{Name: "e", Data: "d"}})
	}
}

// closedByPeer reports whether the server ended the connection (reading
// returns an error other than a timeout) within a few seconds.
func closedByPeer(p *rawPeer) bool {
	_ = p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := p.br.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// Attacks on the link's handshake, over real HTTP: each is refused before
// a link exists, with the status a peer call would get.
func TestLinkHandshakeAttacks(t *testing.T) {
	nodes, _ := staticCluster(t, 4)
	n := nodes[0]
	cases := []struct {
		name   string
		secret string
		edit   func(*http.Request)
		status int
	}{
		{"unsigned", testSecret, func(r *http.Request) { r.Header.Del(headerSignature) }, 401},
		{"wrong secret", "another-secret-0123456789", nil, 401},
		{"for another node", testSecret, func(r *http.Request) {
			newSigner(testSecret).signRequest(r, "n9", "n2", signature.NewNonce(), time.Now(), nil)
		}, http.StatusMisdirectedRequest},
		{"without upgrade", testSecret, func(r *http.Request) { r.Header.Del("Upgrade") }, http.StatusUpgradeRequired},
		{"as a POST", testSecret, func(r *http.Request) { r.Method = http.MethodPost }, http.StatusMethodNotAllowed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if status, _ := handshake(t, n, c.secret, "n9", signature.NewNonce(), c.edit); status != c.status {
				t.Fatalf("status %d, want %d", status, c.status)
			}
		})
	}
	t.Run("replayed handshake", func(t *testing.T) {
		nonce := signature.NewNonce()
		var captured http.Header
		if status, _ := handshake(t, n, testSecret, "n9", nonce, func(r *http.Request) { captured = r.Header.Clone() }); status != 101 {
			t.Fatalf("first handshake: %d", status)
		}
		status, _ := handshake(t, n, "", "n9", nonce, func(r *http.Request) { r.Header = captured })
		if status != 401 {
			t.Fatalf("replayed handshake: status %d, want 401", status)
		}
	})
	t.Run("node without links", func(t *testing.T) {
		disc, _ := NewStatic()
		old := startNode(t, Config{NodeID: "old", Discovery: disc, PerRequestHTTP: true}, &countingHandler{})
		if status, _ := handshake(t, old, testSecret, "n9", signature.NewNonce(), nil); status != 404 {
			t.Fatalf("status %d, want 404", status)
		}
	})
	if n.handler.total() != 0 {
		t.Fatalf("the handler was called %d times", n.handler.total())
	}
}

// Attacks on an open link (frames injected into its TCP stream, replayed,
// forged for the other direction, or announcing a huge size): the server
// closes the link and serves nothing of them.
func TestLinkFrameAttacks(t *testing.T) {
	nodes, _ := staticCluster(t, 4)
	n := nodes[0]
	open := func(t *testing.T) *rawPeer {
		status, p := handshake(t, n, testSecret, "n9", signature.NewNonce(), nil)
		if status != 101 {
			t.Fatalf("handshake: %d", status)
		}
		return p
	}
	t.Run("genuine frame is served", func(t *testing.T) {
		p := open(t)
		before := n.handler.total()
		if err := p.w.add(deliverEntry(1), false); err != nil {
			t.Fatal(err)
		}
		body, err := p.rd.next()
		if err != nil {
			t.Fatal(err)
		}
		id, rep, err := readLinkReplyString(body)
		if err != nil || id != 1 || rep.Count != 4 {
			t.Fatalf("reply %d %+v %v", id, rep, err)
		}
		if n.handler.total() != before+1 {
			t.Fatal("not served once")
		}
	})
	attacks := []struct {
		name  string
		frame func(p *rawPeer) []byte
	}{
		{"tampered body", func(p *rawPeer) []byte {
			f := p.w.frames(nil, deliverEntry(1)(nil), []int{len(deliverEntry(1)(nil))})
			f[6] ^= 1
			return f
		}},
		{"signed for the other direction", func(p *rawPeer) []byte {
			p.w.mac = newSigner(testSecret).frameMAC(dirReplies, "x", "n9", "n1")
			e := deliverEntry(1)(nil)
			return p.w.frames(nil, e, []int{len(e)})
		}},
		{"replayed", func(p *rawPeer) []byte {
			e := deliverEntry(1)(nil)
			f := p.w.frames(nil, e, []int{len(e)})
			// The genuine frame is served and answered; its copy carries
			// sequence number 0 again.
			if _, err := p.conn.Write(f); err != nil {
				t.Fatal(err)
			}
			if _, err := p.rd.next(); err != nil {
				t.Fatalf("reply to the genuine frame: %v", err)
			}
			return f
		}},
		{"huge size", func(p *rawPeer) []byte { return binary.BigEndian.AppendUint32(nil, 1<<31) }},
		{"unsigned", func(p *rawPeer) []byte {
			e := deliverEntry(1)(nil)
			return append(binary.BigEndian.AppendUint32(nil, uint32(len(e))), e...)
		}},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			p := open(t)
			before := n.handler.total()
			frame := a.frame(p)
			if a.name == "replayed" {
				before++
			}
			if _, err := p.conn.Write(frame); err != nil {
				t.Fatal(err)
			}
			if !closedByPeer(p) {
				t.Fatal("the link stayed open")
			}
			if got := n.handler.total(); got != before {
				t.Fatalf("handler called %d times, want %d", got, before)
			}
		})
	}
}

func readLinkReplyString(body string) (uint64, hub.Reply, error) {
	rd := hubwire.NewReader(body)
	return readLinkReply(&rd)
}

// TestSilentPeerLinkIsDropped: a peer that took the link but answers
// nothing (its host gone without a FIN) costs each call its deadline; once
// nothing was read for a Timeout the link is closed and dialed again.
func TestSilentPeerLinkIsDropped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			req, err := http.ReadRequest(bufio.NewReader(c))
			if err != nil {
				_ = c.Close()
				continue
			}
			h := http.Header{}
			newSigner(testSecret).signReply(h, req.Header.Get(headerNonce), "mute", 101, nil)
			_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+linkProtocol+"\r\n")
			_ = h.Write(c)
			_, _ = io.WriteString(c, "\r\n")
			accepted <- c // and never answer
		}
	}()
	disc, _ := NewStatic()
	a := startNode(t, Config{NodeID: "a", Discovery: disc, Timeout: 300 * time.Millisecond}, &countingHandler{})
	if err := disc.SetPeers(a.tr.Self(), Peer{NodeID: "mute", Addr: ln.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		if got, err := a.tr.Deliver(context.Background(), "demo", hub.Target{All: true}, hub.Event{Name: "e"}); got != 0 || err != nil {
			t.Fatalf("round %d: %d, %v", round, got, err)
		}
		select {
		case c := <-accepted:
			defer c.Close()
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: no link dialed", round)
		}
		if openLinkOf(a, "mute") != nil {
			t.Fatalf("round %d: the silent link is still open after a whole Timeout", round)
		}
	}
}

// TestHangingPeerListedFirst: the replies that came in before the deadline
// count even when a peer listed before them hangs until it.
func TestHangingPeerListedFirst(t *testing.T) {
	disc, _ := NewStatic()
	hang := &countingHandler{count: 100, hang: make(chan struct{})}
	slow := startNode(t, Config{NodeID: "slow", Discovery: disc}, hang)
	fast := startNode(t, Config{NodeID: "fast", Discovery: disc}, &countingHandler{count: 7})
	sender := startNode(t, Config{NodeID: "sender", Discovery: disc}, &countingHandler{})
	if err := disc.SetPeers(slow.tr.Self(), fast.tr.Self(), sender.tr.Self()); err != nil {
		t.Fatal(err)
	}
	for round := range 2 { // the first dials both links
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		got, err := sender.tr.Deliver(ctx, "demo", hub.Target{All: true}, hub.Event{Name: "e"})
		cancel()
		if err != nil || got != 7 {
			t.Fatalf("round %d: Deliver = %d, %v; want 7 from the fast peer", round, got, err)
		}
	}
	close(hang.hang)
}
