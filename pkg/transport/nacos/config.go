package nacos

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/rs/zerolog"
)

var (
	// ErrClosed is returned by calls on a closed Transport.
	ErrClosed = errors.New("nacos: transport closed")
	// ErrConfig is wrapped around configuration errors returned by New,
	// NewStatic and ParsePeers (and registry.New).
	ErrConfig = errors.New("nacos: invalid config")
	// ErrRunning is returned by a second call of Run.
	ErrRunning = errors.New("nacos: transport already running")
	// ErrNotServing is returned by Ready before Run serves the peer API.
	ErrNotServing = errors.New("nacos: peer api not serving")
)

// MinSecretLen is the shortest Config.Secret New accepts.
const MinSecretLen = 16

// Config configures a Transport.
type Config struct {
	// NodeID identifies this node to its peers; it must be unique in the
	// cluster. Zero value: a random id (fine for tests, not for a
	// static peer list, which names nodes by id).
	NodeID string
	// Version is published with the registration (metadata "version").
	// Zero value: "dev".
	Version string
	// Apps are the apps this node serves: Run registers the node as a peer
	// of each. A node with no apps can still send into the cluster (a
	// backend without browsers). Zero value: none.
	Apps []string
	// Discovery finds the peers. Required; the Transport owns it and closes
	// it.
	Discovery Discovery

	// Secret is the shared cluster secret peer requests are signed with
	// (HMAC-SHA256); at least MinSecretLen bytes. Required unless
	// AllowInsecure is set.
	Secret string
	// AllowInsecure, with an empty Secret, turns peer authentication off:
	// requests are neither signed nor checked and anybody who can reach the
	// peer port can push events to every browser. Only for tests and
	// single-host development. Zero value: false (New refuses an empty
	// Secret).
	AllowInsecure bool

	// Listen is the peer API listen address. Zero value: ":0" (all
	// interfaces, a random port).
	Listen string
	// AdvertiseAddr is the address peers reach this node at, "host" or
	// "host:port" (the port defaults to the bound one). Zero value: the
	// first non-loopback IPv4 address of the machine, else 127.0.0.1.
	AdvertiseAddr string

	// Timeout bounds a Deliver or Survey whose ctx has no deadline, and the
	// work of the handler on an incoming request. Zero value: 2 s.
	Timeout time.Duration
	// ReplayWindow is how far a request's timestamp may be from the
	// receiver's clock, and how long its nonce is remembered. Zero value:
	// 30 s.
	ReplayWindow time.Duration
	// ClockSkew is how far a peer's clock may lag behind this node's when
	// this node starts: a request signed more than ClockSkew before New ran
	// is refused, so that a request captured before a restart cannot be
	// replayed after it (the replay cache lives in memory). A peer whose
	// clock lags further has its requests refused for the first
	// (lag − ClockSkew) after this node starts. Zero value: 0 (nothing
	// signed before the start is accepted).
	ClockSkew time.Duration
	// MaxNonces bounds the replay cache; while it is full of unexpired
	// nonces new requests are refused with 503. Zero value: 1<<19.
	MaxNonces int
	// MaxBodyBytes bounds request and reply bodies. Zero value: 16 MiB.
	MaxBodyBytes int64
	// PerRequestHTTP sends every request to a peer as an HTTP request of
	// its own and serves no peer links, as versions before links did.
	// Zero value: false: requests go over one link per peer (link.go),
	// and over HTTP to peers that serve none.
	PerRequestHTTP bool
	// ShutdownTimeout bounds the graceful shutdown of the peer server at the
	// end of Run. Zero value: 5 s.
	ShutdownTimeout time.Duration

	// Logger receives the transport's logs (component=nacos-transport).
	// Zero value: logs nothing (the zero zerolog.Logger is a no-op, like
	// zerolog.Nop()).
	Logger zerolog.Logger
}

func (c *Config) setDefaults() error {
	if c.Discovery == nil {
		return fmt.Errorf("%w: Discovery is required", ErrConfig)
	}
	if c.Secret == "" && !c.AllowInsecure {
		return fmt.Errorf("%w: Secret is required (or set AllowInsecure)", ErrConfig)
	}
	if c.Secret != "" && len(c.Secret) < MinSecretLen {
		return fmt.Errorf("%w: Secret is shorter than %d bytes", ErrConfig, MinSecretLen)
	}
	if c.NodeID == "" {
		c.NodeID = "node-" + randomHex(6)
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Listen == "" {
		c.Listen = ":0"
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Second
	}
	if c.ReplayWindow == 0 {
		c.ReplayWindow = 30 * time.Second
	}
	if c.MaxNonces == 0 {
		c.MaxNonces = 1 << 19
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 16 << 20
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 5 * time.Second
	}
	if c.Timeout < 0 || c.ReplayWindow < 0 || c.ClockSkew < 0 || c.MaxNonces < 0 || c.MaxBodyBytes < 0 || c.ShutdownTimeout < 0 {
		return fmt.Errorf("%w: negative duration or size", ErrConfig)
	}
	return nil
}

// advertise resolves the address published for this node.
func advertise(configured string, bound net.Addr) (string, error) {
	port := ""
	if ta, ok := bound.(*net.TCPAddr); ok {
		port = strconv.Itoa(ta.Port)
	}
	if configured == "" {
		return net.JoinHostPort(firstNonLoopbackIPv4(), port), nil
	}
	if host, p, err := net.SplitHostPort(configured); err == nil {
		if host == "" || p == "" {
			return "", fmt.Errorf("%w: AdvertiseAddr %q", ErrConfig, configured)
		}
		return configured, nil
	}
	return net.JoinHostPort(configured, port), nil
}

// firstNonLoopbackIPv4 returns the first IPv4 address of an up, non-loopback
// interface, or 127.0.0.1 when there is none.
func firstNonLoopbackIPv4() string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return "127.0.0.1"
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip4 := ipn.IP.To4(); ip4 != nil && !ip4.IsLoopback() && !ip4.IsLinkLocalUnicast() {
					return ip4.String()
				}
			}
		}
	}
	return "127.0.0.1"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b)
}
