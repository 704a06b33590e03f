package main

import (
	"cmp"
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

	"github.com/pushd/pushd/internal/admission"
	"github.com/pushd/pushd/pkg/api"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/qos"
)

// server is one running pushd: its apps and the parts they share.
type server struct {
	cfg          *Config
	log          zerolog.Logger
	repo         qos.Repository
	redis        goredis.UniversalClient // the QoS repository's client, if any
	history      hub.HistoryStore        // nil: no app keeps history
	historyRedis goredis.UniversalClient // the history store's client, if any
	transport    hub.Transport
	tls          *certReloader // nil: plain HTTP
	mux          hub.Mux
	apps         []*app
	api          *api.Handler // set by routes
	draining     atomic.Bool
	dry          bool               // checkServer: nothing is contacted or bound
	admit        *admission.Limiter // the apps' connects

	clusterCalls  *prometheus.HistogramVec // per app and operation
	clusterErrors *prometheus.CounterVec
}

// newServer builds every part from cfg, logging to logOut; nothing runs
// yet. A configuration it refuses is reported whole: every part is built,
// and every refusal is in the error.
func newServer(cfg *Config, logOut *os.File) (*server, error) {
	defaultNodeID(cfg) // before the logger, whose every line carries it
	s := newServerShell(cfg, newLogger(cfg, logOut))
	routeLibraryLogs(s.log)
	for _, w := range cfg.warnings {
		s.log.Warn().Msg(w)
	}
	if err := s.build(); err != nil {
		s.closeParts()
		return nil, err
	}
	return s, nil
}

// checkServer builds the parts of cfg as newServer does, with nothing
// logged and without opening any connection or listener (a Nacos registry
// is not contacted, nothing is bound to a configured address), and reports every
// problem newServer would refuse. It is pushd checkconfig.
func checkServer(cfg *Config) error {
	s := newServerShell(cfg, zerolog.Nop())
	s.dry = true
	err := s.build()
	s.closeParts()
	return err
}

// defaultNodeID names the node by its host name when the configuration
// does not.
func defaultNodeID(cfg *Config) {
	if cfg.NodeID == "" {
		host, _ := os.Hostname()
		cfg.NodeID = cmp.Or(host, "pushd")
	}
}

func newServerShell(cfg *Config, log zerolog.Logger) *server {
	defaultNodeID(cfg)
	return &server{cfg: cfg, log: log,
		clusterCalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pushd_cluster_call_seconds",
			Help:    "Calls to the other nodes through the cluster transport (op: deliver or the survey operation).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"app", "op"}),
		clusterErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushd_cluster_call_errors_total",
			Help: "Calls to the other nodes that failed or answered partially."}, []string{"app", "op"}),
	}
}

// build makes every part of s.cfg, going on after a part that fails, and
// returns every failure joined (each one "config: KEY: …").
func (s *server) build() error {
	cfg := s.cfg
	var errs []error
	var err error
	if s.admit, err = cfg.HTTP.Admission.limiter(); err != nil {
		errs = append(errs, fmt.Errorf("config: http.admission: %w", err))
	}
	if cfg.TLS.CertFile != "" {
		r, err := newCertReloader(cfg.TLS.CertFile, cfg.TLS.KeyFile, s.log)
		if err != nil {
			errs = append(errs, err)
		}
		s.tls = r
	}
	for _, step := range []func() error{s.newRepository, s.newHistory, s.newTransport} {
		if err := step(); err != nil {
			errs = append(errs, err)
		}
	}
	for i, ac := range cfg.Apps {
		if !validAppName(ac.Name) {
			continue // validate reported it; nothing is named by it
		}
		a, err := s.newApp(ac)
		if err != nil {
			errs = append(errs, appError(i, err))
			continue
		}
		s.apps = append(s.apps, a)
		s.mux.Add(a.hub)
	}
	return errors.Join(errs...)
}

// closeParts releases what build made, for a server that is not run.
func (s *server) closeParts() {
	if c, ok := s.transport.(hub.Closer); ok {
		_ = c.Close()
	}
	if s.repo != nil {
		_ = s.repo.Close()
	}
	for _, c := range []goredis.UniversalClient{s.redis, s.historyRedis} {
		if c != nil {
			_ = c.Close()
		}
	}
}

// run serves until ctx ends, then drains.
func run(ctx context.Context, cfg *Config) error {
	s, err := newServer(cfg, os.Stderr)
	if err != nil {
		return configError{err}
	}
	ln, err := listen(ctx, cfg.Listen, time.Duration(cfg.HTTP.TCPUserTimeout))
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
	errs := make(chan error, 5+3*len(s.apps))
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
		if a.presence != nil {
			goRun("presence "+a.cfg.Name, func() error { return a.presence.Run(bg) })
		}
	}
	if s.transport != nil {
		goRun("cluster", func() error { return s.transport.Run(bg, &s.mux) })
	}
	if s.tls != nil {
		srv.TLSConfig = tlsConfig(s.tls)
		goRun("https", func() error { return srv.ServeTLS(ln, "", "") })
	} else {
		if hc := s.cfg.HTTP; hc.APIServer == "lean" {
			// Plain API sends are served by the API's lean HTTP/1.1 path,
			// everything else by net/http (api.Handler.Listener).
			ln = s.api.Listener(ln, api.LeanConfig{ReadHeaderTimeout: time.Duration(hc.ReadHeaderTimeout),
				ReadTimeout: time.Duration(hc.ReadTimeout), IdleTimeout: time.Duration(hc.IdleTimeout),
				MaxHeaderBytes: hc.MaxHeaderBytes, Answered: s.countAnswer})
		}
		goRun("http", func() error { return srv.Serve(ln) })
	}
	goRun("summaries", func() error { return s.logSummaries(bg, time.Duration(s.cfg.Log.Summary)) })
	goRun("dependencies", func() error { return s.watchDependencies(bg) })
	if s.cfg.embedded && s.cfg.Listen == demoListen {
		s.log.Warn().Str("listen", demoListen).
			Msg("embedded demo: listening on 127.0.0.1 only (its keys are well known); --listen :8080 or PUSHD_LISTEN=:8080 listens on every interface")
	}
	s.log.Info().Str("listen", ln.Addr().String()).Bool("tls", s.tls != nil).Int("apps", len(s.apps)).
		Str("qos", s.cfg.QoS.Repository).Str("cluster", s.cfg.Cluster.Transport).Msg("pushd started")

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
	if c, ok := s.transport.(hub.Closer); ok {
		_ = c.Close()
	}
	if err := s.repo.Close(); err != nil {
		s.log.Warn().Err(err).Msg("qos store close")
	}
	if s.redis != nil {
		_ = s.redis.Close()
	}
	if s.historyRedis != nil {
		_ = s.historyRedis.Close()
	}
	s.log.Info().Msg("pushd stopped")
}
