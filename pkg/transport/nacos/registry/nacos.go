package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	nacoslog "github.com/nacos-group/nacos-sdk-go/v2/common/logger"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"
	"github.com/rs/zerolog"

	"github.com/pushd/pushd/pkg/transport/nacos"
)

// Instance metadata keys published in Nacos. Nothing secret is published.
const (
	MetaNodeID  = "nodeId"
	MetaVersion = "version"
	MetaProto   = "pushdPeer" // peer API version, "v1"
)

var (
	// ErrClosed is returned by Register after Close.
	ErrClosed = errors.New("registry: nacos discovery closed")
	// ErrNotConnected is returned by Ready while the naming client has no
	// healthy connection to a Nacos server.
	ErrNotConnected = errors.New("registry: not connected to nacos server")
)

// Config configures the Nacos discovery. Configuration errors of New wrap
// nacos.ErrConfig, like those of the transport.
type Config struct {
	// Servers are the Nacos servers, "host:port" of the HTTP port (8848);
	// a scheme ("http://", "nacos://") is ignored. The gRPC port is port+1000
	// unless the entry says otherwise with "?grpc_port=N". Required.
	Servers []string
	// Namespace is the Nacos namespace id. Zero value: "public".
	Namespace string
	// Group is the Nacos group of the services. Zero value: "DEFAULT_GROUP".
	Group string
	// ServicePrefix is prepended to the app name to form the service name.
	// Zero value: "pushd-".
	ServicePrefix string
	// ClusterName is the Nacos cluster the instance registers in (and the
	// only one watched). Zero value: "DEFAULT".
	ClusterName string
	// Username and Password log in to a Nacos server with auth enabled.
	// Zero value: no login.
	Username string
	Password string
	// Dir receives the SDK's log and cache directories ("log", "cache"),
	// which it cannot be stopped from writing. Zero value:
	// $TMPDIR/pushd-nacos. Never the working directory.
	Dir string
	// RequestTimeout bounds each request to Nacos. Zero value: 3 s.
	RequestTimeout time.Duration
	// SDKLogLevel is the SDK's own level ("debug", "info", "warn",
	// "error"); its messages are forwarded to Logger. Zero value: "warn".
	SDKLogLevel string
	// Logger receives discovery and SDK logs. Zero value: logs nothing.
	Logger zerolog.Logger
}

// Nacos is a nacos.Discovery backed by a Nacos 2.x server through nacos-sdk-go
// v2: each app is the service ServicePrefix+app; this node registers its
// peer address there as an ephemeral instance (tied to the client's
// connection, so it disappears when the process dies or disconnects) and
// subscribes to the service's instance list.
//
// The SDK keeps package-global state (its logger, a client registry) and
// leaks one UDP socket per client (a legacy push receiver it never closes):
// create one Nacos per process, not one per request.
type Nacos struct {
	cfg    Config
	log    zerolog.Logger
	client naming_client.INamingClient

	// sdkMu serialises our calls into the SDK: two concurrent requests
	// while it is disconnected race inside it (rpcClientStatus is read
	// without atomics in RpcClient.Request, v2.3.2).
	sdkMu sync.Mutex

	mu         sync.Mutex
	registered map[string]nacos.Peer  // app → what we registered
	watches    map[string]*nacosWatch // app → subscription
	closed     bool
	closeOnce  sync.Once
}

// nacosWatch is the subscription of one app; peers is replaced by the SDK
// callback (see refresh).
type nacosWatch struct {
	ready chan struct{} // closed once the subscription was attempted
	param *vo.SubscribeParam
	peers atomic.Pointer[[]nacos.Peer]

	refreshMu sync.Mutex // one refresh at a time, so the last one stores the latest list
}

var _ nacos.Discovery = (*Nacos)(nil)

// New creates the Nacos naming client. It does not wait for a
// connection: the SDK connects and reconnects in the background and replays
// registrations and subscriptions when it does (see Ready). It can still
// block for a few seconds when a server accepts TCP but does not answer.
func New(cfg Config) (*Nacos, error) {
	if len(cfg.Servers) == 0 {
		return nil, fmt.Errorf("%w: Nacos Servers is required", nacos.ErrConfig)
	}
	servers := make([]constant.ServerConfig, 0, len(cfg.Servers))
	for _, s := range cfg.Servers {
		sc, err := parseNacosServer(s)
		if err != nil {
			return nil, err
		}
		servers = append(servers, sc)
	}
	if cfg.Namespace == "" {
		cfg.Namespace = constant.DEFAULT_NAMESPACE_ID
	}
	if cfg.Group == "" {
		cfg.Group = constant.DEFAULT_GROUP
	}
	if cfg.ServicePrefix == "" {
		cfg.ServicePrefix = "pushd-"
	}
	if cfg.ClusterName == "" {
		cfg.ClusterName = "DEFAULT"
	}
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(os.TempDir(), "pushd-nacos")
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 3 * time.Second
	}
	if cfg.SDKLogLevel == "" {
		cfg.SDKLogLevel = "warn"
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("registry: sdk dir: %w", err)
	}
	cc := constant.NewClientConfig(
		constant.WithNamespaceId(cfg.Namespace),
		constant.WithTimeoutMs(uint64(cfg.RequestTimeout/time.Millisecond)),
		constant.WithNotLoadCacheAtStart(true),  // never start from a stale peer list on disk
		constant.WithUpdateCacheWhenEmpty(true), // else "the last peer left" is never reported
		constant.WithLogDir(filepath.Join(cfg.Dir, "log")),
		constant.WithCacheDir(filepath.Join(cfg.Dir, "cache")),
		constant.WithLogLevel(cfg.SDKLogLevel),
		constant.WithUsername(cfg.Username),
		constant.WithPassword(cfg.Password),
		constant.WithAppName("pushd"),
	)
	n := &Nacos{
		cfg:        cfg,
		log:        cfg.Logger.With().Str("component", "nacos-discovery").Logger(),
		registered: make(map[string]nacos.Peer),
		watches:    make(map[string]*nacosWatch),
	}
	client, err := clients.NewNamingClient(vo.NacosClientParam{ClientConfig: cc, ServerConfigs: servers})
	if err != nil {
		return nil, fmt.Errorf("registry: naming client: %w", err)
	}
	// NewNamingClient installs its own (file) logger globally; take over.
	nacoslog.SetLogger(newSDKLogger(cfg.Logger, cfg.SDKLogLevel))
	n.client = client
	return n, nil
}

// parseNacosServer turns "[scheme://]host:port[?grpc_port=N]" into a
// ServerConfig.
func parseNacosServer(s string) (constant.ServerConfig, error) {
	raw := s
	if !strings.Contains(s, "://") {
		s = "nacos://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Hostname() == "" || u.Port() == "" {
		return constant.ServerConfig{}, fmt.Errorf("%w: Nacos server %q: want host:port", nacos.ErrConfig, raw)
	}
	port, err := strconv.ParseUint(u.Port(), 10, 16)
	if err != nil || port == 0 {
		return constant.ServerConfig{}, fmt.Errorf("%w: Nacos server %q: bad port", nacos.ErrConfig, raw)
	}
	sc := constant.ServerConfig{IpAddr: u.Hostname(), Port: port}
	if g := u.Query().Get("grpc_port"); g != "" {
		gp, err := strconv.ParseUint(g, 10, 16)
		if err != nil || gp == 0 {
			return constant.ServerConfig{}, fmt.Errorf("%w: Nacos server %q: bad grpc_port", nacos.ErrConfig, raw)
		}
		sc.GrpcPort = gp
	}
	return sc, nil
}

func (n *Nacos) service(app string) string { return n.cfg.ServicePrefix + app }

// Register publishes self as an ephemeral instance of the app's service and
// subscribes to it. On error the SDK keeps the registration and retries it
// when it (re)connects.
func (n *Nacos) Register(ctx context.Context, app string, self nacos.Peer) error {
	host, portText, err := net.SplitHostPort(self.Addr)
	if err != nil {
		return fmt.Errorf("%w: peer address %q: %w", nacos.ErrConfig, self.Addr, err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return fmt.Errorf("%w: peer address %q: bad port", nacos.ErrConfig, self.Addr)
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	n.registered[app] = self
	n.mu.Unlock()

	n.sdkMu.Lock()
	ok, err := n.client.RegisterInstance(vo.RegisterInstanceParam{
		Ip:          host,
		Port:        port,
		Weight:      1,
		Enable:      true,
		Healthy:     true,
		Ephemeral:   true, // the SDK's default false would go over HTTP and outlive us
		ClusterName: n.cfg.ClusterName,
		ServiceName: n.service(app),
		GroupName:   n.cfg.Group,
		Metadata: map[string]string{
			MetaNodeID:  self.NodeID,
			MetaVersion: self.Version,
			MetaProto:   "v1",
		},
	})
	n.sdkMu.Unlock()
	if err == nil && !ok {
		err = errors.New("server refused")
	}
	if err != nil {
		err = fmt.Errorf("registry: register %s in %s: %w", self.Addr, n.service(app), err)
	} else {
		n.log.Info().Str("app", app).Str("service", n.service(app)).Str("addr", self.Addr).Msg("registered")
	}
	n.watch(app)
	return err
}

// Peers returns the peers of app as last pushed by Nacos. The first call
// for an app subscribes (this node need not be registered for it).
func (n *Nacos) Peers(ctx context.Context, app string) ([]nacos.Peer, error) {
	w := n.watch(app)
	select {
	case <-w.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if p := w.peers.Load(); p != nil {
		return *p, nil
	}
	return nil, nil
}

// watch returns the subscription of app, subscribing on first use in the
// background (the SDK call cannot be cancelled and may block for the request
// timeout; Peers waits for it only as long as its ctx allows). The SDK
// remembers a subscription even when the first attempt fails and replays it
// on reconnect, so it is attempted once.
func (n *Nacos) watch(app string) *nacosWatch {
	n.mu.Lock()
	defer n.mu.Unlock()
	if w, ok := n.watches[app]; ok {
		return w
	}
	w := &nacosWatch{ready: make(chan struct{})}
	if n.closed {
		close(w.ready) // no new subscriptions after Close: no peers
		return w
	}
	n.watches[app] = w
	log := n.log.With().Str("app", app).Logger()
	w.param = &vo.SubscribeParam{
		ServiceName: n.service(app),
		GroupName:   n.cfg.Group,
		Clusters:    []string{n.cfg.ClusterName},
		// Runs in the SDK's goroutines: never block.
		SubscribeCallback: func([]model.Instance, error) { n.refresh(w, log) },
	}
	go func() {
		defer close(w.ready)
		n.sdkMu.Lock()
		err := n.client.Subscribe(w.param)
		n.sdkMu.Unlock()
		if err != nil {
			log.Warn().Err(err).Msg("subscribe (the sdk retries on reconnect)")
		}
	}()
	return w
}

// refresh stores the app's peers from the SDK's cache. The SDK calls its
// subscription callback from several goroutines at once — its push handler,
// Subscribe's own answer, its periodic refresher — each with the list it
// has just processed, so two calls can run in either order and the
// arguments of the last one can be the older list; after that the SDK sees
// no change and would never call again. Reading its cache (which ignores
// lists older than the one it holds) one call at a time leaves the last
// call with the newest list. The SDK's cache has a race of its own
// (ServiceInfoHolder.ProcessService checks and stores without a lock, v2.3.2):
// its refresher corrects it within the service's cacheMillis, and the
// callback that follows stores the correction here.
func (n *Nacos) refresh(w *nacosWatch, log zerolog.Logger) {
	w.refreshMu.Lock()
	defer w.refreshMu.Unlock()
	// Cached once the SDK calls back: GetService answers from memory.
	svc, err := n.client.GetService(vo.GetServiceParam{
		ServiceName: w.param.ServiceName, GroupName: w.param.GroupName, Clusters: w.param.Clusters,
	})
	if err != nil {
		log.Warn().Err(err).Msg("read the pushed peer list")
		return
	}
	peers := peersOf(svc.Hosts)
	w.peers.Store(&peers)
	log.Debug().Int("peers", len(peers)).Msg("peer list pushed")
}

// peersOf converts an instance list, keeping the usable pushd peers.
func peersOf(instances []model.Instance) []nacos.Peer {
	peers := make([]nacos.Peer, 0, len(instances))
	for _, in := range instances {
		id := in.Metadata[MetaNodeID]
		if !in.Enable || !in.Healthy || id == "" || in.Port == 0 {
			continue
		}
		peers = append(peers, nacos.Peer{
			NodeID:  id,
			Addr:    net.JoinHostPort(in.Ip, strconv.FormatUint(in.Port, 10)),
			Version: in.Metadata[MetaVersion],
		})
	}
	sort.Slice(peers, func(i, j int) bool { return peers[i].NodeID < peers[j].NodeID })
	return peers
}

// Ready reports whether the naming client is connected to a Nacos server.
func (n *Nacos) Ready(context.Context) error {
	if n.client.ServerHealthy() {
		return nil
	}
	return ErrNotConnected
}

// Close deregisters every registration and closes the naming client.
// Peers keeps answering with the last lists. Idempotent.
func (n *Nacos) Close() error {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.closed = true
		registered := n.registered
		n.registered = map[string]nacos.Peer{}
		n.mu.Unlock()
		n.sdkMu.Lock()
		defer n.sdkMu.Unlock()
		for app, self := range registered {
			host, portText, _ := net.SplitHostPort(self.Addr)
			port, _ := strconv.ParseUint(portText, 10, 16)
			if _, err := n.client.DeregisterInstance(vo.DeregisterInstanceParam{
				Ip: host, Port: port, Cluster: n.cfg.ClusterName,
				ServiceName: n.service(app), GroupName: n.cfg.Group, Ephemeral: true,
			}); err != nil {
				// Closing the client removes ephemeral instances anyway.
				n.log.Debug().Err(err).Str("app", app).Msg("deregister")
			}
		}
		n.client.CloseClient()
	})
	return nil
}
