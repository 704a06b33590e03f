package main

import (
	"fmt"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written like "25s" in YAML and env vars.
type Duration time.Duration

// UnmarshalYAML reads "25s", "1h30m" or a number of seconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	return d.set(n.Value)
}

func (d *Duration) set(s string) error {
	if s == "" {
		*d = 0
		return nil
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (try \"25s\")", s)
	}
	*d = Duration(v)
	return nil
}

// Config is pushd's configuration file. Every field can be overridden by
// an environment variable named PUSHD_ and its path in upper case, e.g.
// PUSHD_LISTEN, PUSHD_QOS_REPOSITORY, PUSHD_APPS_0_PATH.
type Config struct {
	// Listen is the HTTP listen address. Default ":8080".
	Listen string `yaml:"listen"`
	// NodeID names this node in the cluster. Default: the host name.
	NodeID string `yaml:"node_id"`
	Log    struct {
		// Level is debug, info, warn or error. Default info.
		Level string `yaml:"level"`
		// Format is json, console or auto: console on a terminal, json
		// otherwise. Default auto.
		Format string `yaml:"format"`
		// Summary is the interval of the info line that says what each
		// app did (connections, users, sends, deliveries, errors). Default 1 min;
		// -1 off.
		Summary Duration `yaml:"summary"`
	} `yaml:"log"`
	// Shutdown controls the drain on SIGTERM.
	Shutdown struct {
		// DrainWindow spreads the closing of connections. Default 10 s.
		DrainWindow Duration `yaml:"drain_window"`
		// Timeout bounds the whole shutdown. Default 30 s.
		Timeout Duration `yaml:"timeout"`
	} `yaml:"shutdown"`
	// HTTP bounds the time and size of what clients send.
	HTTP HTTPConfig `yaml:"http"`
	// TLS serves HTTPS (and HTTP/2 to browsers) instead of plain HTTP.
	TLS struct {
		// CertFile and KeyFile are the PEM certificate (chain) and key;
		// they are loaded again when they change. Both empty: plain HTTP.
		CertFile string `yaml:"cert_file"`
		KeyFile  string `yaml:"key_file"`
	} `yaml:"tls"`
	Cluster ClusterConfig `yaml:"cluster"`
	QoS     QoSConfig     `yaml:"qos"`
	History HistoryConfig `yaml:"history"`
	// GCPercent is the Go garbage collector's target (GOGC). 0, the
	// default, is automatic (gc.go): while the node allocates, 50 while
	// the live heap is under 8 MiB (a tight heap keeps a few thousand idle
	// connections cheap), 100 above (fewer collections for busy large
	// servers); while it allocates little (idle connections), 25, with the
	// free memory given back once. The GOGC environment variable, when
	// set, wins.
	GCPercent int `yaml:"gc_percent"`
	Admin     struct {
		// Token opens the admin page at /admin/ (the page asks for it).
		// Empty, the default, leaves the page off.
		Token string `yaml:"token"`
	} `yaml:"admin"`
	// DemoPage serves the demo page at /. On in the embedded demo.
	DemoPage bool        `yaml:"demo_page"`
	Apps     []AppConfig `yaml:"apps"`

	// embedded is set for the embedded demo (no --config).
	embedded bool
	// warnings are logged at start: what loadConfig ignored.
	warnings []string
}

// HTTPConfig bounds slow and large requests, so that a client cannot hold
// a goroutine and a descriptor by sending slowly or not at all.
type HTTPConfig struct {
	// ReadHeaderTimeout bounds reading a request's headers. Default 10 s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, body included, for
	// every request but SSE streams (whose request has no body to wait
	// for). Default 30 s.
	ReadTimeout Duration `yaml:"read_timeout"`
	// IdleTimeout closes keep-alive connections idle this long.
	// Default 120 s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds a request's headers. Default 64 KiB.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// TCPUserTimeout closes a connection whose written data stays
	// unacknowledged this long (TCP_USER_TIMEOUT, Linux): a browser gone
	// without a FIN is noticed at the next heartbeat plus this. Default
	// 75 s; -1 leaves the kernel's default (~15 min). It also aborts a
	// connection at an unanswered TCP keepalive probe (every 15 s) once
	// nothing came from the peer for this long, so it must stay well
	// above the keepalive interval: at 30 s, one lost probe ACK was enough,
	// and 95 000 idle connections on a loaded host lost thousands.
	TCPUserTimeout Duration `yaml:"tcp_user_timeout"`
	// Admission bounds the connects this node admits (admission.go).
	Admission AdmissionConfig `yaml:"admission"`
	// APIServer is what serves API sends on plain HTTP: "lean" (default,
	// the API's own HTTP/1.1 path for plain sends, api.Handler.Listener)
	// or "net/http" (every request through net/http). Under tls: always
	// net/http.
	APIServer string `yaml:"api_server"`
}

// ClusterConfig selects and configures the Transport.
type ClusterConfig struct {
	// Transport is none, redis or nacos. Default none.
	Transport string `yaml:"transport"`
	// Secret authenticates peer requests (nacos transport).
	Secret string `yaml:"secret"`
	// RedisURL is the Redis of the redis transport. Default
	// redis://127.0.0.1:6379/0.
	RedisURL string `yaml:"redis_url"`
	// Prefix starts every Redis channel. Default "pushd".
	Prefix string `yaml:"prefix"`
	// Peers is a static peer list (host:port of peer endpoints) used
	// instead of Nacos when set.
	Peers []string `yaml:"peers"`
	// PeerListen is the peer API's listen address. Default ":0".
	PeerListen string `yaml:"peer_listen"`
	// AdvertiseAddr is the peer address published to others. Default: the
	// first non-loopback IPv4 and the bound port.
	AdvertiseAddr string `yaml:"advertise_addr"`
	// Timeout bounds one cluster call. Default 2 s.
	Timeout Duration `yaml:"timeout"`
	// ShedAfter: a node whose Redis (the Redis transport, the Redis
	// stores) stays unreachable this long closes its browsers' streams with a
	// retry: hint, spread over shutdown.drain_window, once per outage, so
	// they reconnect to nodes that can serve them. Default 10 s; -1 off.
	ShedAfter Duration `yaml:"shed_after"`
	// LegacyWire makes the redis transport publish its requests in the
	// JSON format of earlier builds, which those read: set it while a
	// cluster is upgraded from such a build. Default false: binary.
	LegacyWire bool `yaml:"legacy_wire"`
	// PerRequestHTTP makes the nacos transport send every peer call as an
	// HTTP request of its own and serve no peer links, as builds before
	// the links did. Default false: one link per peer (and HTTP to peers
	// that serve none).
	PerRequestHTTP bool `yaml:"per_request_http"`
	Nacos          struct {
		Servers   []string `yaml:"servers"`
		Namespace string   `yaml:"namespace"`
		Group     string   `yaml:"group"`
		Username  string   `yaml:"username"`
		Password  string   `yaml:"password"`
		// Dir holds the SDK's logs and cache. Default: a temp dir.
		Dir string `yaml:"dir"`
	} `yaml:"nacos"`
}

// QoSConfig configures at-least-once delivery.
type QoSConfig struct {
	// Repository is memory or redis. Default memory.
	Repository string `yaml:"repository"`
	// RedisURL is the Redis of the redis repository. Default
	// redis://127.0.0.1:6379/0 (PUSHD_REDIS_URL sets it too).
	RedisURL string `yaml:"redis_url"`
	// Prefix starts every Redis key. Default "pushd".
	Prefix string `yaml:"prefix"`
	// TTL is how long a message waits for its recipients. Default 24 h.
	TTL Duration `yaml:"ttl"`
	// MaxPerRecipient bounds each inbox. Default 1000.
	MaxPerRecipient int `yaml:"max_per_recipient"`
	// MaxMessages bounds the memory repository. Default 100000.
	MaxMessages int `yaml:"max_messages"`
	// MaxBytes bounds the size of the memory repository's messages.
	// Default 64 MiB; -1 off.
	MaxBytes int64 `yaml:"max_bytes"`
	// RedeliverAfter resends unacknowledged messages to connected clients.
	// Default 30 s; -1 disables.
	RedeliverAfter Duration `yaml:"redeliver_after"`
}

// AppConfig is one app: its base path, authentication, backend and limits.
type AppConfig struct {
	// Name identifies the app (API paths, connect-finish name). Required.
	Name string `yaml:"name"`
	// Path is the browser base path. Default "/sse/" + Name.
	Path string     `yaml:"path"`
	Auth AuthConfig `yaml:"auth"`
	// APIKeys are accepted by the server API for this app.
	APIKeys  []string `yaml:"api_keys"`
	Upstream struct {
		// URL receives message/{path}.do at URL/message/{path} and uploads
		// at URL/upload/{path}. Empty: pushd answers itself (echo).
		URL string `yaml:"url"`
		// Secret signs the identity headers sent with each call.
		Secret  string   `yaml:"secret"`
		Timeout Duration `yaml:"timeout"`
		// MaxBody bounds a forwarded body in bytes. Default 10 MiB.
		MaxBody int64 `yaml:"max_body"`
	} `yaml:"upstream"`
	Hooks struct {
		// URL receives online/offline notifications. Empty: none.
		URL    string `yaml:"url"`
		Secret string `yaml:"secret"`
		// Grace delays offline so reloads do not flap. Default 5 s.
		Grace Duration `yaml:"grace"`
		// EveryConnection also reports each connect and disconnect.
		EveryConnection bool `yaml:"every_connection"`
	} `yaml:"hooks"`
	// MaxConnectionsPerClient caps the tabs of one browser profile (user,
	// client id and tenant). Default 3; -1 disables.
	MaxConnectionsPerClient int `yaml:"max_connections_per_client"`
	// ClientCapByDomain keys the per-client cap on the Host the client
	// sent as well. Default false: Host is the client's choice.
	ClientCapByDomain bool `yaml:"client_cap_by_domain"`
	// MaxConnectionsPerUser caps one user's connections across the
	// cluster, with or without client id; the oldest are closed.
	// Default 16; -1 disables.
	MaxConnectionsPerUser int `yaml:"max_connections_per_user"`
	// MaxConnections caps the app's connections on this node; more get
	// 503 with Retry-After. Default 100000; -1 disables.
	MaxConnections int `yaml:"max_connections"`
	// MaxListeners caps the events one connection listens to. Default 64.
	MaxListeners int `yaml:"max_listeners"`
	// MaxNameLength caps an event or listener name in bytes. Default 128.
	MaxNameLength int `yaml:"max_name_length"`
	// MaxKeepalive is the longest connection lifetime a client may ask
	// for with keepaliveTime when keepalive is 0. Default 24 h; -1 lets
	// clients ask for unlimited.
	MaxKeepalive Duration `yaml:"max_keepalive"`
	// Heartbeat is the interval of ":" comments. Default 25 s; -1 off.
	Heartbeat Duration `yaml:"heartbeat"`
	// Keepalive overrides the client's connection lifetime. Default: the
	// client's; -1: unlimited.
	Keepalive Duration `yaml:"keepalive"`
	// ReconnectTime is sent to browsers as retry:. Default 5 s.
	ReconnectTime Duration `yaml:"reconnect_time"`
	// QueueSize bounds a connection's queue. Default 256.
	QueueSize int `yaml:"queue_size"`
	// EnableJSONEndpoints turns on users.json, connections.json and
	// repositoryMessages.json (they show other users' connections).
	EnableJSONEndpoints bool `yaml:"enable_json_endpoints"`
	// CORS lists the origins allowed to call cross-origin.
	CORS []string `yaml:"cors"`
	// Channels are the app's channel limits and namespaces.
	Channels ChannelsConfig `yaml:"channels"`
	// UserHistory makes each user's events a resumable stream that keeps
	// that much history. Default none.
	UserHistory *StreamHistoryConfig `yaml:"user_history"`
}

// AuthConfig selects how browsers are authenticated.
type AuthConfig struct {
	// Mode is jwt, webhook or demo. Required.
	Mode string `yaml:"mode"`
	JWT  struct {
		Algorithm        string   `yaml:"algorithm"`
		Secret           string   `yaml:"secret"`
		PublicKeyFile    string   `yaml:"public_key_file"`
		PublicKeyPEM     string   `yaml:"public_key_pem"`
		JWKSURL          string   `yaml:"jwks_url"`
		JWKSRefresh      Duration `yaml:"jwks_refresh"`
		JWKSTimeout      Duration `yaml:"jwks_timeout"`
		AllowAnonymous   bool     `yaml:"allow_anonymous"`
		Sources          []string `yaml:"sources"`
		Issuer           string   `yaml:"issuer"`
		Audience         string   `yaml:"audience"`
		Leeway           Duration `yaml:"leeway"`
		AllowNoExpiry    bool     `yaml:"allow_no_expiry"`
		UserClaim        string   `yaml:"user_claim"`
		TenantClaim      string   `yaml:"tenant_claim"`
		NameClaim        string   `yaml:"name_claim"`
		AccessTokenClaim string   `yaml:"access_token_claim"`
		ChannelsClaim    string   `yaml:"channels_claim"`
	} `yaml:"jwt"`
	Webhook struct {
		URL         string   `yaml:"url"`
		Headers     []string `yaml:"headers"`
		QueryParams []string `yaml:"query_params"`
		Timeout     Duration `yaml:"timeout"`
		CacheTTL    Duration `yaml:"cache_ttl"`
		// AllowAnonymous accepts answers without a user id.
		AllowAnonymous bool `yaml:"allow_anonymous"`
	} `yaml:"webhook"`
}
