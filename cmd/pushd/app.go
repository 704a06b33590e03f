package main

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/pushd/pushd/pkg/auth"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/notify"
	"github.com/pushd/pushd/pkg/upstream"
	"github.com/pushd/pushd/pkg/web"
)

// app is one configured app.
type app struct {
	cfg      AppConfig
	hub      *hub.Hub
	web      *web.Handler
	notifier *notify.Notifier
	presence *channelPresence // nil: no namespace with presence
	failures *failures
}

// failures counts what went wrong for an app, for the periodic summary
// (the hooks' failures are counted by its notifier).
type failures struct {
	answers5xx atomic.Uint64 // 5xx answers of its API and browser calls (not streams)
	cluster    atomic.Uint64 // failed or partial calls to other nodes
}

// newAuth builds the authenticator of an app's auth.mode.
func (s *server) newAuth(ac AppConfig) (auth.Authenticator, error) {
	switch ac.Auth.Mode {
	case "jwt":
		j := ac.Auth.JWT
		return auth.NewJWT(auth.JWTConfig{Algorithm: j.Algorithm, Secret: j.Secret, PublicKeyPEM: j.PublicKeyPEM,
			PublicKeyFile: j.PublicKeyFile, JWKSURL: j.JWKSURL, JWKSRefresh: time.Duration(j.JWKSRefresh),
			JWKSTimeout: time.Duration(j.JWKSTimeout), AllowAnonymous: j.AllowAnonymous, Sources: j.Sources, Issuer: j.Issuer, Audience: j.Audience,
			Leeway: time.Duration(j.Leeway), AllowNoExpiry: j.AllowNoExpiry, UserClaim: j.UserClaim, TenantClaim: j.TenantClaim,
			NameClaim: j.NameClaim, AccessTokenClaim: j.AccessTokenClaim, ChannelsClaim: j.ChannelsClaim})
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

// newApp builds one app: its hub, authenticator, upstream, browser
// handler and presence hooks.
func (s *server) newApp(ac AppConfig) (*app, error) {
	policy, err := channelPolicy(ac)
	if err != nil {
		return nil, fmt.Errorf("channels: %w", err)
	}
	fails := &failures{}
	hcfg := hub.Config{
		App: ac.Name, NodeID: s.cfg.NodeID, QueueSize: ac.QueueSize, Heartbeat: time.Duration(ac.Heartbeat),
		ReconnectTime: time.Duration(ac.ReconnectTime), Keepalive: time.Duration(ac.Keepalive),
		MaxConnectionsPerClient: ac.MaxConnectionsPerClient, ClientCapByDomain: ac.ClientCapByDomain,
		MaxConnectionsPerUser: ac.MaxConnectionsPerUser, MaxConnections: ac.MaxConnections,
		MaxListeners: ac.MaxListeners, MaxChannels: ac.Channels.MaxPerConnection, MaxNameLength: ac.MaxNameLength, MaxKeepalive: time.Duration(ac.MaxKeepalive),
		Transport:  s.transport,
		Repository: s.repo, QoSTTL: time.Duration(s.cfg.QoS.TTL), RedeliverAfter: time.Duration(s.cfg.QoS.RedeliverAfter),
		ObserveCluster: func(op string, took time.Duration, err error) {
			s.clusterCalls.WithLabelValues(ac.Name, op).Observe(took.Seconds())
			if err != nil {
				s.clusterErrors.WithLabelValues(ac.Name, op).Inc()
				fails.cluster.Add(1)
			}
		},
		Logger: s.log,
	}
	if s.history != nil {
		hcfg.History, hcfg.StreamHistory = s.history, streamHistory(ac, policy)
	}
	h, err := hub.New(hcfg)
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
	wcfg := web.Config{Hub: h, Path: ac.Path, Auth: authn, Upstream: up,
		EnableJSON: ac.EnableJSONEndpoints, MaxBody: ac.Upstream.MaxBody, CORSOrigins: ac.CORS,
		ReadTimeout: time.Duration(s.cfg.HTTP.ReadTimeout), Logger: s.log}
	if policy != nil { // a nil *Policy in the interface would not be nil
		wcfg.Channels = policy
	}
	wh, err := web.New(wcfg)
	if err != nil {
		return nil, err // "web: …"
	}
	a := &app{cfg: ac, hub: h, web: wh, failures: fails}
	if ac.Hooks.URL != "" {
		if a.notifier, err = s.newNotifier(ac, h); err != nil {
			return nil, fmt.Errorf("hooks: %w", err)
		}
	}
	a.presence = newChannelPresence(a, policy, s.log)
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
