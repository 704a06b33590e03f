package main

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// defaultTCPUserTimeout is http.tcp_user_timeout's default: four TCP
// keepalive intervals (Go's 15 s) and more, so that a connection survives
// a few lost probe ACKs, and still minutes short of the kernel's ~15.
const defaultTCPUserTimeout = 75 * time.Second

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
	if h.TCPUserTimeout == 0 {
		h.TCPUserTimeout = Duration(defaultTCPUserTimeout)
	}
	switch h.APIServer {
	case "":
		h.APIServer = "lean"
	case "lean", "net/http":
	default:
		p.addf("http.api_server: %q is not lean or net/http", h.APIServer)
	}
	h.Admission.validate(p)
}

// validate fills defaults and names the key of every problem, section
// by section.
func (c *Config) validate() error {
	var p problems
	c.Listen = cmp.Or(c.Listen, ":8080")
	c.HTTP.validate(&p)
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		p.addf("tls: cert_file and key_file go together")
	}
	c.validateLog(&p)
	if c.GCPercent < 0 {
		p.addf("gc_percent: %d must be positive, or 0 for automatic", c.GCPercent)
	}
	if c.Shutdown.DrainWindow == 0 {
		c.Shutdown.DrainWindow = Duration(10 * time.Second)
	}
	if c.Shutdown.Timeout == 0 {
		c.Shutdown.Timeout = Duration(30 * time.Second)
	}
	c.Cluster.validate(&p)
	c.QoS.validate(&p)
	c.History.validate(c.QoS.RedisURL, &p)
	validateApps(c.Apps, &p)
	return p.err()
}

// validateLog fills the log defaults.
func (c *Config) validateLog(p *problems) {
	c.Log.Level = cmp.Or(c.Log.Level, "info")
	c.Log.Format = cmp.Or(c.Log.Format, "auto")
	if c.Log.Summary == 0 {
		c.Log.Summary = Duration(time.Minute)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		p.addf("log.level: %q is not debug, info, warn or error", c.Log.Level)
	}
	if !slices.Contains([]string{"auto", "json", "console"}, c.Log.Format) {
		p.addf("log.format: %q is not auto, json or console", c.Log.Format)
	}
}

// validate fills the cluster defaults.
func (c *ClusterConfig) validate(p *problems) {
	c.Transport = cmp.Or(c.Transport, "none")
	if !slices.Contains([]string{"none", "redis", "nacos"}, c.Transport) {
		p.addf("cluster.transport: %q is not none, redis or nacos", c.Transport)
	}
	if c.Transport == "nacos" && len(c.Peers) == 0 && len(c.Nacos.Servers) == 0 {
		p.addf("cluster.nacos.servers: the nacos transport needs servers (or cluster.peers)")
	}
	if c.Transport == "nacos" && c.Secret == "" {
		p.addf("cluster.secret: the nacos transport needs a shared secret")
	}
	c.RedisURL = cmp.Or(c.RedisURL, "redis://127.0.0.1:6379/0")
	if c.ShedAfter == 0 {
		c.ShedAfter = Duration(10 * time.Second)
	}
}

// validate fills the QoS defaults.
func (q *QoSConfig) validate(p *problems) {
	q.Repository = cmp.Or(q.Repository, "memory")
	if !slices.Contains([]string{"memory", "redis"}, q.Repository) {
		p.addf("qos.repository: %q is not memory or redis", q.Repository)
	}
	q.RedisURL = cmp.Or(q.RedisURL, "redis://127.0.0.1:6379/0")
	if q.TTL < 0 || q.MaxPerRecipient < 0 || q.MaxMessages < 0 {
		p.addf("qos: ttl, max_per_recipient and max_messages must not be negative")
	}
}

// validAppName reports whether name can name an app: non-empty, without
// / ? # % or spaces (they would break its paths), { or } (they would
// change the Redis Cluster hash tag of its keys).
func validAppName(name string) bool {
	return name != "" && !strings.ContainsAny(name, "/ ?#%{}")
}

// validateApps fills each app's path and checks that names and paths are
// unique.
func validateApps(apps []AppConfig, p *problems) {
	if len(apps) == 0 {
		p.addf("apps: at least one app is needed")
	}
	names, paths := map[string]bool{}, map[string]bool{}
	for i := range apps {
		a := &apps[i]
		key := fmt.Sprintf("apps[%d]", i)
		if !validAppName(a.Name) {
			p.addf("%s.name: %q must be non-empty without / ? # %% { } or spaces", key, a.Name)
			continue
		}
		a.Path = cmp.Or(a.Path, "/sse/"+a.Name)
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
		validateChannels(*a, key, p)
		validateHistory(*a, key, p)
	}
}
