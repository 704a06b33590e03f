package nacos

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
)

// Peer is one node's peer API endpoint.
type Peer struct {
	// NodeID identifies the node; requests are bound to it, so it must be
	// the node's Config.NodeID.
	NodeID string `json:"nodeId"`
	// Addr is the "host:port" the peer API listens on.
	Addr string `json:"addr"`
	// Version is the node's pushd version, informational.
	Version string `json:"version,omitempty"`
}

// Discovery finds the peers of an app and announces this node. The
// Transport owns its Discovery: it calls Register from Run and Close when it
// stops. Implementations must be safe for concurrent use.
type Discovery interface {
	// Register announces self as a peer of app until Close. Calling it again
	// for the same app replaces the announcement.
	Register(ctx context.Context, app string, self Peer) error
	// Peers returns the currently known peers of app, possibly including
	// this node (the Transport filters it out). It must be cheap: it is
	// called on every send. Callers must not modify the returned slice.
	Peers(ctx context.Context, app string) ([]Peer, error)
	// Close withdraws every registration and stops watching; Peers keeps
	// answering with the last known lists. Idempotent.
	Close() error
}

// Static is a Discovery over a fixed peer list, the same for every app
// (config `cluster.peers`). It needs no registry: every node is configured
// with the list of all nodes, itself included. Register is a no-op.
type Static struct {
	mu    sync.RWMutex
	peers []Peer
}

var _ Discovery = (*Static)(nil)

// NewStatic returns a Static discovery over peers. Every peer needs a
// NodeID and an Addr.
func NewStatic(peers ...Peer) (*Static, error) {
	s := &Static{}
	if err := s.SetPeers(peers...); err != nil {
		return nil, err
	}
	return s, nil
}

// ParsePeers parses peers written as "nodeId@host:port", separated by
// commas or given as several strings, e.g. "n1@10.0.0.1:7946,n2@10.0.0.2:7946".
func ParsePeers(specs ...string) ([]Peer, error) {
	var peers []Peer
	for _, spec := range specs {
		for _, s := range strings.Split(spec, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			id, addr, ok := strings.Cut(s, "@")
			if !ok {
				return nil, fmt.Errorf("%w: peer %q: want nodeId@host:port", ErrConfig, s)
			}
			p := Peer{NodeID: id, Addr: addr}
			if err := p.validate(); err != nil {
				return nil, err
			}
			peers = append(peers, p)
		}
	}
	return peers, nil
}

// SetPeers replaces the list (for example on a configuration reload).
func (s *Static) SetPeers(peers ...Peer) error {
	for _, p := range peers {
		if err := p.validate(); err != nil {
			return err
		}
	}
	cp := append([]Peer(nil), peers...)
	s.mu.Lock()
	s.peers = cp
	s.mu.Unlock()
	return nil
}

// Register does nothing: a static list is configured, not announced.
func (s *Static) Register(context.Context, string, Peer) error { return nil }

// Peers returns the configured list whatever the app.
func (s *Static) Peers(context.Context, string) ([]Peer, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.peers, nil
}

// Close does nothing.
func (s *Static) Close() error { return nil }

func (p Peer) validate() error {
	if p.NodeID == "" {
		return fmt.Errorf("%w: peer %q has no node id", ErrConfig, p.Addr)
	}
	host, port, err := net.SplitHostPort(p.Addr)
	if err != nil || host == "" || port == "" || port == "0" {
		return fmt.Errorf("%w: peer %s: address %q is not host:port", ErrConfig, p.NodeID, p.Addr)
	}
	return nil
}
