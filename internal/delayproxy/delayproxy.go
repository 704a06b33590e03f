package delayproxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"
)

// Proxy forwards connections accepted on its listener to a target,
// delaying each direction by Delay.
type Proxy struct {
	ln     net.Listener
	target string
	delay  time.Duration
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// Listen starts a proxy on listen (host:port, port 0 for any) to target.
func Listen(listen, target string, delay time.Duration) (*Proxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("delayproxy: %w", err)
	}
	p := &Proxy{ln: ln, target: target, delay: delay, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops accepting, closes every proxied connection and waits for
// their goroutines.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

// track registers c until Close; false when the proxy is closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(client)
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	if !p.track(client) {
		return
	}
	defer p.untrack(client)
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(server) {
		return
	}
	defer p.untrack(server)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{}, 2)
	go func() { p.pump(ctx, server, client); done <- struct{}{} }()
	go func() { p.pump(ctx, client, server); done <- struct{}{} }()
	<-done // one side ended: end both
	cancel()
	_ = client.Close()
	_ = server.Close()
	<-done
}

// chunk is bytes read from one side at a time.
type chunk struct {
	b  []byte
	at time.Time
}

// pump copies from src to dst, each chunk written Delay after it was
// read, in order.
func (p *Proxy) pump(ctx context.Context, dst io.Writer, src io.Reader) {
	queue := make(chan chunk, 1024)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		clk, err := newClock(ctx)
		if err != nil {
			return
		}
		for c := range queue {
			if wait := time.Until(c.at.Add(p.delay)); wait > 0 {
				if clk.wait(wait) != nil {
					return
				}
			}
			if _, err := dst.Write(c.b); err != nil {
				return
			}
		}
	}()
	defer func() { close(queue); <-writerDone }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			// A copy of what was read, not the buffer: most reads are a
			// few hundred bytes, and a fresh 32 KiB buffer per read was
			// hundreds of MB/s of garbage for the process's collector.
			select {
			case queue <- chunk{b: slices.Clone(buf[:n]), at: time.Now()}:
			case <-writerDone:
				return
			}
		}
		if err != nil {
			return // EOF or an error: what was read is still written
		}
	}
}
