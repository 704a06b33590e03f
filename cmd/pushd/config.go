package main

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
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
		// app did (connections, users, sends, deliveries). Default 1 min;
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
	// GCPercent is the Go garbage collector's target (GOGC). 0, the
	// default, is automatic: 50 while the live heap is under 8 MiB (a
	// tight heap keeps a few thousand idle connections cheap), 100 above
	// (fewer collections for busy large servers). The GOGC environment
	// variable, when set, wins.
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
	// LegacyWire makes the redis transport publish its requests in the
	// JSON format of earlier builds, which those read: set it while a
	// cluster is upgraded from such a build. Default false: binary.
	LegacyWire bool `yaml:"legacy_wire"`
	Nacos      struct {
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

// demoListen is the embedded demo's address: loopback only, since its
// keys are well known.
const demoListen = "127.0.0.1:8080"

// embeddedDemo is the configuration of `pushd` without --config.
const embeddedDemo = `
listen: "` + demoListen + `"
demo_page: true
admin: {token: demo-admin}
log: {level: info}
apps:
  - name: demo
    path: /sse/demo
    auth: {mode: demo}
    api_keys: [demo-key]
    enable_json_endpoints: true
`

// loadConfig reads file (the embedded demo when empty), applies the
// environment and validates the result.
func loadConfig(file string, env []string) (*Config, error) {
	var raw []byte
	if file == "" {
		raw = []byte(embeddedDemo)
	} else {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		raw = b
	}
	cfg := Config{embedded: file == ""}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("config %s: %w", cmpOr(file, "(embedded demo)"), err)
	}
	var probs problems
	decodeNode(&doc, reflect.ValueOf(&cfg).Elem(), "", &probs)
	if err := probs.err(); err != nil {
		return nil, err
	}
	if err := applyEnv(&cfg, env); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// applyEnv overrides cfg from PUSHD_* variables: every field by its path
// (PUSHD_QOS_TTL, PUSHD_APPS_0_AUTH_MODE; lists comma-separated), plus
// the shortcuts PUSHD_API_KEY (API keys of the first app) and
// PUSHD_REDIS_URL (both Redis URLs, unless set separately).
func applyEnv(cfg *Config, env []string) error {
	vars := make(map[string]string)
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "PUSHD_") {
			vars[k] = v
		}
	}
	if v, ok := vars["PUSHD_REDIS_URL"]; ok {
		cfg.QoS.RedisURL, cfg.Cluster.RedisURL = v, v
	}
	if v, ok := vars["PUSHD_API_KEY"]; ok && len(cfg.Apps) > 0 {
		cfg.Apps[0].APIKeys = splitList(v)
	}
	return walkEnv(reflect.ValueOf(cfg).Elem(), "PUSHD", vars)
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

var durationType = reflect.TypeFor[Duration]()

func walkEnv(v reflect.Value, name string, vars map[string]string) error {
	switch {
	case v.Type() == durationType:
		if s, ok := vars[name]; ok {
			return wrapEnv(name, v.Addr().Interface().(*Duration).set(s))
		}
	case v.Kind() == reflect.Struct:
		for i := range v.NumField() {
			tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			if err := walkEnv(v.Field(i), name+"_"+strings.ToUpper(tag), vars); err != nil {
				return err
			}
		}
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		for k := range vars {
			if i, ok := envListIndex(k, name); ok && i >= v.Len() {
				return fmt.Errorf("config: env %s: there is no item %d, the list has %d", k, i, v.Len())
			}
		}
		for i := range v.Len() {
			if err := walkEnv(v.Index(i), name+"_"+strconv.Itoa(i), vars); err != nil {
				return err
			}
		}
	default:
		s, ok := vars[name]
		if !ok {
			return nil
		}
		return wrapEnv(name, setScalar(v, s))
	}
	return nil
}

func wrapEnv(name string, err error) error {
	if err != nil {
		return fmt.Errorf("config: env %s: %w", name, err)
	}
	return nil
}

func setScalar(v reflect.Value, s string) error {
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("not a boolean: %q", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer: %q", s)
		}
		v.SetInt(n)
	case reflect.Slice:
		v.Set(reflect.ValueOf(splitList(s)))
	default:
		return fmt.Errorf("cannot set a %s from the environment", v.Kind())
	}
	return nil
}

// validate fills the HTTP defaults.
func (h *HTTPConfig) validate(p *problems) {
	if h.ReadHeaderTimeout < 0 || h.ReadTimeout < 0 || h.IdleTimeout < 0 || h.MaxHeaderBytes < 0 {
		p.addf("http: timeouts and max_header_bytes must not be negative")
	}
	if h.ReadHeaderTimeout == 0 {
		h.ReadHeaderTimeout = Duration(10 * time.Second)
	}
	if h.ReadTimeout == 0 {
		h.ReadTimeout = Duration(30 * time.Second)
	}
	if h.IdleTimeout == 0 {
		h.IdleTimeout = Duration(120 * time.Second)
	}
	if h.MaxHeaderBytes == 0 {
		h.MaxHeaderBytes = 64 << 10
	}
}

// validate fills defaults and names the key of every problem.
func (c *Config) validate() error {
	var p problems
	c.Listen = cmpOr(c.Listen, ":8080")
	c.HTTP.validate(&p)
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		p.addf("tls: cert_file and key_file go together")
	}
	c.Log.Level = cmpOr(c.Log.Level, "info")
	c.Log.Format = cmpOr(c.Log.Format, "auto")
	if c.Log.Summary == 0 {
		c.Log.Summary = Duration(time.Minute)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		p.addf("log.level: %q is not debug, info, warn or error", c.Log.Level)
	}
	if !slices.Contains([]string{"auto", "json", "console"}, c.Log.Format) {
		p.addf("log.format: %q is not auto, json or console", c.Log.Format)
	}
	if c.GCPercent < 0 {
		p.addf("gc_percent: %d must be positive, or 0 for automatic", c.GCPercent)
	}
	if c.Shutdown.DrainWindow == 0 {
		c.Shutdown.DrainWindow = Duration(10 * time.Second)
	}
	if c.Shutdown.Timeout == 0 {
		c.Shutdown.Timeout = Duration(30 * time.Second)
	}
	c.Cluster.Transport = cmpOr(c.Cluster.Transport, "none")
	if !slices.Contains([]string{"none", "redis", "nacos"}, c.Cluster.Transport) {
		p.addf("cluster.transport: %q is not none, redis or nacos", c.Cluster.Transport)
	}
	if c.Cluster.Transport == "nacos" && len(c.Cluster.Peers) == 0 && len(c.Cluster.Nacos.Servers) == 0 {
		p.addf("cluster.nacos.servers: the nacos transport needs servers (or cluster.peers)")
	}
	if c.Cluster.Transport == "nacos" && c.Cluster.Secret == "" {
		p.addf("cluster.secret: the nacos transport needs a shared secret")
	}
	c.Cluster.RedisURL = cmpOr(c.Cluster.RedisURL, "redis://127.0.0.1:6379/0")
	c.QoS.Repository = cmpOr(c.QoS.Repository, "memory")
	if !slices.Contains([]string{"memory", "redis"}, c.QoS.Repository) {
		p.addf("qos.repository: %q is not memory or redis", c.QoS.Repository)
	}
	c.QoS.RedisURL = cmpOr(c.QoS.RedisURL, "redis://127.0.0.1:6379/0")
	if c.QoS.TTL < 0 || c.QoS.MaxPerRecipient < 0 || c.QoS.MaxMessages < 0 {
		p.addf("qos: ttl, max_per_recipient and max_messages must not be negative")
	}
	if len(c.Apps) == 0 {
		p.addf("apps: at least one app is needed")
	}
	names, paths := map[string]bool{}, map[string]bool{}
	for i := range c.Apps {
		a := &c.Apps[i]
		key := fmt.Sprintf("apps[%d]", i)
		if a.Name == "" || strings.ContainsAny(a.Name, "/ ?#%") {
			p.addf("%s.name: %q must be non-empty without / ? # %% or spaces", key, a.Name)
			continue
		}
		a.Path = cmpOr(a.Path, "/sse/"+a.Name)
		if a.Path[0] != '/' || strings.HasSuffix(a.Path, "/") || strings.HasPrefix(a.Path, "/api/") {
			p.addf("%s.path: %q must start with /, not end with / and not be under /api/", key, a.Path)
		}
		if names[a.Name] || paths[a.Path] {
			p.addf("%s: name %q or path %q is used twice", key, a.Name, a.Path)
		}
		names[a.Name], paths[a.Path] = true, true
		if !slices.Contains([]string{"jwt", "webhook", "demo"}, a.Auth.Mode) {
			p.addf("%s.auth.mode: %q is not jwt, webhook or demo", key, a.Auth.Mode)
		}
		if a.Auth.Mode == "webhook" && a.Auth.Webhook.URL == "" {
			p.addf("%s.auth.webhook.url: required for webhook auth", key)
		}
		if a.QueueSize < 0 || a.Upstream.MaxBody < 0 {
			p.addf("%s: queue_size and upstream.max_body must not be negative", key)
		}
	}
	return p.err()
}
