package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/pushd/pushd/internal/redisurl"
	"github.com/pushd/pushd/pkg/auth"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/notify"
	"github.com/pushd/pushd/pkg/qos"
	"github.com/pushd/pushd/pkg/transport/nacos"
	redistransport "github.com/pushd/pushd/pkg/transport/redis"
	"github.com/pushd/pushd/pkg/upstream"
	"github.com/pushd/pushd/pkg/web"
)

// server is one running pushd: its apps and the parts they share.
type server struct {
	cfg       *Config
	log       zerolog.Logger
	repo      qos.Repository
	redis     *goredis.Client // the QoS repository's client, if any
	transport hub.Transport
	tls       *certReloader // nil: plain HTTP
	mux       hub.Mux
	apps      []*app
	draining  atomic.Bool

	clusterCalls  *prometheus.HistogramVec // per app and operation
	clusterErrors *prometheus.CounterVec
}

// app is one configured app.
type app struct {
	cfg      AppConfig
	hub      *hub.Hub
	web      *web.Handler
	notifier *notify.Notifier
}

// newServer builds every part from cfg; nothing runs yet.
func newServer(cfg *Config) (*server, error) {
	if cfg.NodeID == "" {
		host, _ := os.Hostname()
		cfg.NodeID = cmpOr(host, "pushd")
	}
	s := &server{cfg: cfg, log: newLogger(cfg, os.Stderr),
		clusterCalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pushd_cluster_call_seconds",
			Help:    "Calls to the other nodes through the cluster transport (op: deliver or the survey operation).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"app", "op"}),
		clusterErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushd_cluster_call_errors_total",
			Help: "Calls to the other nodes that failed or answered partially."}, []string{"app", "op"}),
	}
	routeLibraryLogs(s.log)
	if cfg.TLS.CertFile != "" {
		r, err := newCertReloader(cfg.TLS.CertFile, cfg.TLS.KeyFile, s.log)
		if err != nil {
			return nil, err
		}
		s.tls = r
	}
	if err := s.newRepository(); err != nil {
		return nil, err
	}
	if err := s.newTransport(); err != nil {
		return nil, err
	}
	for i, ac := range cfg.Apps {
		a, err := s.newApp(ac)
		if err != nil {
			return nil, fmt.Errorf("config: apps[%d].%w", i, err)
		}
		s.apps = append(s.apps, a)
		s.mux.Add(a.hub)
	}
	return s, nil
}

func (s *server) newRepository() error {
	q := s.cfg.QoS
	switch q.Repository {
	case "redis":
		client, err := redisurl.NewClient(q.RedisURL)
		if err != nil {
			return fmt.Errorf("config: qos.redis_url: %w", err)
		}
		s.redis = client
		repo, err := qos.NewRedis(qos.RedisConfig{Client: s.redis, Prefix: q.Prefix,
			MaxPerRecipient: q.MaxPerRecipient, DefaultTTL: time.Duration(q.TTL), Logger: s.log})
		if err != nil {
			return fmt.Errorf("config: qos: %w", err)
		}
		s.repo = repo
	default:
		repo, err := qos.NewMemory(qos.MemoryConfig{MaxPerRecipient: q.MaxPerRecipient,
			MaxMessages: q.MaxMessages, MaxBytes: q.MaxBytes, DefaultTTL: time.Duration(q.TTL), Logger: s.log})
		if err != nil {
			return fmt.Errorf("config: qos: %w", err)
		}
		s.repo = repo
	}
	return nil
}

func (s *server) newTransport() error {
	c := s.cfg.Cluster
	switch c.Transport {
	case "redis":
		t, err := redistransport.New(redistransport.Config{URL: c.RedisURL, Prefix: c.Prefix, NodeID: s.cfg.NodeID,
			Timeout: time.Duration(c.Timeout), Logger: s.log,
			OnResubscribe: func() { s.replayAll() }})
		if err != nil {
			return fmt.Errorf("config: cluster: %w", err)
		}
		s.transport = t
	case "nacos":
		var disc nacos.Discovery
		if len(c.Peers) > 0 {
			peers, err := nacos.ParsePeers(c.Peers...)
			if err != nil {
				return fmt.Errorf("config: cluster.peers: %w", err)
			}
			static, err := nacos.NewStatic(peers...)
			if err != nil {
				return fmt.Errorf("config: cluster.peers: %w", err)
			}
			disc = static
		} else {
			n, err := nacos.NewNacos(nacos.NacosConfig{Servers: c.Nacos.Servers, Namespace: c.Nacos.Namespace,
				Group: c.Nacos.Group, Username: c.Nacos.Username, Password: c.Nacos.Password, Dir: c.Nacos.Dir,
				SDKLogLevel: "error", Logger: s.log})
			if err != nil {
				return fmt.Errorf("config: cluster.nacos: %w", err)
			}
			disc = n
		}
		names := make([]string, len(s.cfg.Apps))
		for i, a := range s.cfg.Apps {
			names[i] = a.Name
		}
		t, err := nacos.New(nacos.Config{NodeID: s.cfg.NodeID, Version: hub.Version, Apps: names, Discovery: disc,
			Secret: c.Secret, Listen: c.PeerListen, AdvertiseAddr: c.AdvertiseAddr,
			Timeout: time.Duration(c.Timeout), Logger: s.log})
		if err != nil {
			return fmt.Errorf("config: cluster: %w", err)
		}
		s.transport = t
	}
	return nil
}

// replayAll re-reads the QoS inboxes of every connection (after the
// transport may have lost messages).
func (s *server) replayAll() {
	for _, a := range s.apps {
		go a.hub.ReplayAll(context.Background())
	}
}

func (s *server) newAuth(ac AppConfig) (auth.Authenticator, error) {
	switch ac.Auth.Mode {
	case "jwt":
		j := ac.Auth.JWT
		return auth.NewJWT(auth.JWTConfig{Algorithm: j.Algorithm, Secret: j.Secret, PublicKeyPEM: j.PublicKeyPEM,
			PublicKeyFile: j.PublicKeyFile, JWKSURL: j.JWKSURL, JWKSRefresh: time.Duration(j.JWKSRefresh),
			JWKSTimeout: time.Duration(j.JWKSTimeout), AllowAnonymous: j.AllowAnonymous, Sources: j.Sources, Issuer: j.Issuer, Audience: j.Audience,
			Leeway: time.Duration(j.Leeway), AllowNoExpiry: j.AllowNoExpiry, UserClaim: j.UserClaim, TenantClaim: j.TenantClaim,
			NameClaim: j.NameClaim, AccessTokenClaim: j.AccessTokenClaim})
	case "webhook":
		w := ac.Auth.Webhook
		return auth.NewWebhook(auth.WebhookConfig{URL: w.URL, App: ac.Name, Headers: w.Headers,
			QueryParams: w.QueryParams, Timeout: time.Duration(w.Timeout), CacheTTL: time.Duration(w.CacheTTL),
			AllowAnonymous: w.AllowAnonymous})
	default:
		s.log.Warn().Str("app", ac.Name).Msg("demo authentication is on: anybody can connect as any user")
		return auth.Demo{}, nil
	}
}

func (s *server) newApp(ac AppConfig) (*app, error) {
	h, err := hub.New(hub.Config{
		App: ac.Name, NodeID: s.cfg.NodeID, QueueSize: ac.QueueSize, Heartbeat: time.Duration(ac.Heartbeat),
		ReconnectTime: time.Duration(ac.ReconnectTime), Keepalive: time.Duration(ac.Keepalive),
		MaxConnectionsPerClient: ac.MaxConnectionsPerClient, ClientCapByDomain: ac.ClientCapByDomain,
		MaxConnectionsPerUser: ac.MaxConnectionsPerUser, MaxConnections: ac.MaxConnections,
		MaxListeners: ac.MaxListeners, MaxNameLength: ac.MaxNameLength, MaxKeepalive: time.Duration(ac.MaxKeepalive),
		Transport:  s.transport,
		Repository: s.repo, QoSTTL: time.Duration(s.cfg.QoS.TTL), RedeliverAfter: time.Duration(s.cfg.QoS.RedeliverAfter),
		ObserveCluster: func(op string, took time.Duration, err error) {
			s.clusterCalls.WithLabelValues(ac.Name, op).Observe(took.Seconds())
			if err != nil {
				s.clusterErrors.WithLabelValues(ac.Name, op).Inc()
			}
		},
		Logger: s.log,
	})
	if err != nil {
		return nil, err // "hub: …"
	}
	if len(ac.APIKeys) == 0 {
		s.log.Warn().Str("app", ac.Name).Msg("the app has no api_keys: the server API refuses every call for it")
	}
	authn, err := s.newAuth(ac)
	if err != nil {
		return nil, err // auth's errors start with "auth: "
	}
	var up web.UpstreamHandler
	if ac.Upstream.URL != "" {
		fwd, err := upstream.New(upstream.Config{URL: ac.Upstream.URL, Secret: ac.Upstream.Secret,
			Timeout: time.Duration(ac.Upstream.Timeout), MaxBody: ac.Upstream.MaxBody, Logger: s.log})
		if err != nil {
			return nil, fmt.Errorf("upstream: %w", err)
		}
		up = web.UpstreamFunc(func(w http.ResponseWriter, r *http.Request, call web.Call) {
			kind := upstream.KindMessage
			if call.Upload {
				kind = upstream.KindUpload
			}
			fwd.Forward(w, r, kind, call.Path, upstream.Identity{App: call.App, UserID: call.User.ID,
				TenantID: call.User.TenantID, ConnectionID: call.ConnectionID})
		})
	}
	wh, err := web.New(web.Config{Hub: h, Path: ac.Path, Auth: authn, Upstream: up,
		EnableJSON: ac.EnableJSONEndpoints, MaxBody: ac.Upstream.MaxBody, CORSOrigins: ac.CORS,
		ReadTimeout: time.Duration(s.cfg.HTTP.ReadTimeout), Logger: s.log})
	if err != nil {
		return nil, err // "web: …"
	}
	a := &app{cfg: ac, hub: h, web: wh}
	if ac.Hooks.URL != "" {
		if a.notifier, err = s.newNotifier(ac, h); err != nil {
			return nil, fmt.Errorf("hooks: %w", err)
		}
	}
	return a, nil
}

// newNotifier reports the app's online/offline events to its backend.
func (s *server) newNotifier(ac AppConfig, h *hub.Hub) (*notify.Notifier, error) {
	cfg := notify.Config{URL: ac.Hooks.URL, Secret: ac.Hooks.Secret, NodeID: s.cfg.NodeID,
		Grace: time.Duration(ac.Hooks.Grace), EveryConnection: ac.Hooks.EveryConnection, Logger: s.log}
	if h.Clustered() {
		cfg.Cluster = clusterPresence{h}
	}
	n, err := notify.New(cfg)
	if err != nil {
		return nil, err
	}
	presence := func(c *hub.Conn) notify.Presence {
		// The client's own count of visible seconds when it sent one (the
		// disconnect beacon), else how long the connection was open.
		online := time.Duration(c.SessionDuration()) * time.Second
		if online == 0 {
			online = time.Since(c.CreatedAt()).Truncate(time.Second)
		}
		return notify.Presence{App: ac.Name, UserID: c.User().ID, TenantID: c.User().TenantID, ConnectionID: c.ID(),
			Connections: h.LocalUserConnections(c.User().ID), SessionDuration: online}
	}
	h.OnConnect(func(c *hub.Conn) {
		if c.User().ID != "" {
			p := presence(c)
			p.At = c.CreatedAt() // the time other nodes see for it
			n.Connected(p)
		}
	})
	h.OnDisconnect(func(c *hub.Conn, _ hub.DisconnectReason) {
		if c.User().ID != "" {
			n.Disconnected(presence(c))
		}
	})
	return n, nil
}

// clusterPresence lets the notifier see a user's connections on the other
// nodes of the app.
type clusterPresence struct{ h *hub.Hub }

// OtherConnections implements notify.Cluster.
func (cp clusterPresence) OtherConnections(ctx context.Context, userID string) ([]notify.RemoteConnection, error) {
	conns, err := cp.h.Connections(ctx, hub.ConnectionQuery{UserID: userID})
	var out []notify.RemoteConnection
	for _, c := range conns {
		if c.NodeID != cp.h.NodeID() {
			out = append(out, notify.RemoteConnection{Node: c.NodeID, Opened: time.UnixMilli(c.CreateTime)})
		}
	}
	return out, err
}

// ready reports why this node cannot serve, or nil.
func (s *server) ready(ctx context.Context) error {
	if s.draining.Load() {
		return errors.New("draining")
	}
	if s.redis != nil {
		if err := s.redis.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("qos redis: %w", err)
		}
	}
	if r, ok := s.transport.(interface{ Ready(context.Context) error }); ok {
		if err := r.Ready(ctx); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
	}
	return nil
}

// run serves until ctx ends, then drains.
func run(ctx context.Context, cfg *Config) error {
	s, err := newServer(cfg)
	if err != nil {
		return configError{err}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	return s.serve(ctx, ln)
}

// serve runs every part on ln until ctx ends, then shuts down in order:
// refuse new connections and fail readiness, drain the streams over the
// window, stop the HTTP server, the hubs, the transport and the store.
func (s *server) serve(ctx context.Context, ln net.Listener) error {
	hc := s.cfg.HTTP
	srv := &http.Server{Handler: s.routes(), ReadHeaderTimeout: time.Duration(hc.ReadHeaderTimeout),
		IdleTimeout: time.Duration(hc.IdleTimeout), MaxHeaderBytes: hc.MaxHeaderBytes}
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	var wg sync.WaitGroup
	errs := make(chan error, 4+len(s.apps))
	goRun := func(name string, fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	for _, a := range s.apps {
		goRun("hub "+a.cfg.Name, func() error { return a.hub.Run(bg) })
		if a.notifier != nil {
			goRun("hooks "+a.cfg.Name, func() error { return a.notifier.Run(bg) })
		}
	}
	if s.transport != nil {
		goRun("cluster", func() error { return s.transport.Run(bg, &s.mux) })
	}
	if s.tls != nil {
		srv.TLSConfig = tlsConfig(s.tls)
		goRun("https", func() error { return srv.ServeTLS(ln, "", "") })
	} else {
		goRun("http", func() error { return srv.Serve(ln) })
	}
	goRun("summaries", func() error { return s.logSummaries(bg, time.Duration(s.cfg.Log.Summary)) })
	s.log.Info().Str("listen", ln.Addr().String()).Bool("tls", s.tls != nil).Int("apps", len(s.apps)).
		Str("qos", s.cfg.QoS.Repository).Str("cluster", s.cfg.Cluster.Transport).Msg("pushd started")
	if s.cfg.embedded && s.cfg.Listen == demoListen {
		s.log.Warn().Str("listen", demoListen).
			Msg("embedded demo: listening on 127.0.0.1 only (its keys are well known); --listen :8080 or PUSHD_LISTEN=:8080 listens on every interface")
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
		s.log.Error().Err(runErr).Msg("stopping after a failure")
	}
	s.shutdown(srv)
	stopBG()
	wg.Wait()
	return runErr
}

func (s *server) shutdown(srv *http.Server) {
	cfg := s.cfg.Shutdown
	s.log.Info().Dur("window", time.Duration(cfg.DrainWindow)).Msg("draining")
	s.draining.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.Timeout))
	defer cancel()
	var wg sync.WaitGroup
	for _, a := range s.apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.hub.Drain(ctx, time.Duration(cfg.DrainWindow)); err != nil {
				s.log.Warn().Err(err).Str("app", a.cfg.Name).Msg("drain cut short")
			}
		}()
	}
	wg.Wait()
	if err := srv.Shutdown(ctx); err != nil {
		s.log.Warn().Err(err).Msg("http shutdown")
	}
	for _, a := range s.apps {
		if err := a.hub.Shutdown(ctx); err != nil {
			s.log.Warn().Err(err).Str("app", a.cfg.Name).Msg("hub shutdown")
		}
	}
	if c, ok := s.transport.(interface{ Close() error }); ok {
		_ = c.Close()
	}
	if err := s.repo.Close(); err != nil {
		s.log.Warn().Err(err).Msg("qos store close")
	}
	if s.redis != nil {
		_ = s.redis.Close()
	}
	s.log.Info().Msg("pushd stopped")
}
