package main

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	openapi "github.com/pushd/pushd/api"
	"github.com/pushd/pushd/internal/httpx"
	"github.com/pushd/pushd/pkg/admin"
	"github.com/pushd/pushd/pkg/api"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/static"
)

// routes builds the HTTP surface: each app's browser endpoints under its
// path, the server API, health, metrics and the demo page.
func (s *server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer, s.requestLog, s.readDeadline)
	for _, a := range s.apps {
		r.Handle(a.cfg.Path, a.web)
		r.Handle(a.cfg.Path+"/*", a.web)
		r.Handle(a.cfg.Path+"/connect", s.admitted(a.web))
	}
	apps := make(map[string]api.App, len(s.apps))
	for _, a := range s.apps {
		apps[a.cfg.Name] = api.App{Hub: a.hub, Keys: a.cfg.APIKeys}
	}
	apiHandler, _ := api.New(api.Config{Apps: apps, Logger: s.log})
	s.api = apiHandler
	r.Handle("/api/v1/openapi.yaml", openapi.Handler())
	r.Handle("/api/*", apiHandler)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", func(w http.ResponseWriter, req *http.Request) {
		ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			httpx.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()})
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	r.Handle("/metrics", promhttp.HandlerFor(s.metrics(), promhttp.HandlerOpts{}))
	adminPage := s.adminHandler()
	r.Handle("/admin", adminPage)
	r.Handle("/admin/*", adminPage)
	if s.cfg.DemoPage {
		r.Get("/", func(w http.ResponseWriter, req *http.Request) {
			http.ServeFileFS(w, req, static.FS, "index.html")
		})
	}
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteError(w, http.StatusNotFound, "not found")
	})
	return r
}

// adminHandler serves the admin page, or explains how to turn it on.
func (s *server) adminHandler() http.Handler {
	hubs := make([]*hub.Hub, 0, len(s.apps))
	for _, a := range s.apps {
		hubs = append(hubs, a.hub)
	}
	h, err := admin.New(admin.Config{Token: s.cfg.Admin.Token, Hubs: hubs, Logger: s.log})
	if err != nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			httpx.WriteError(w, http.StatusNotFound, "the admin page is off: set admin.token (PUSHD_ADMIN_TOKEN) to turn it on")
		})
	}
	return h
}

// readDeadline bounds how long reading a request may take (http.read_timeout)
// for everything but the apps' browser endpoints, which set their own
// deadlines per call (pkg/web: none on the stream, shorter ones on control
// calls): a slow or stalled body is cut off instead of holding a goroutine
// and a descriptor. The server-wide ReadTimeout cannot be used, since it
// would also end the streams.
func (s *server) readDeadline(next http.Handler) http.Handler {
	appPaths := make([]string, len(s.apps))
	for i, a := range s.apps {
		appPaths[i] = a.cfg.Path
	}
	timeout := time.Duration(s.cfg.HTTP.ReadTimeout)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !underAny(r.URL.Path, appPaths) {
			// Not every writer supports deadlines (tests' recorders): then
			// there is nothing to bound.
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
		}
		next.ServeHTTP(w, r)
	})
}

// underAny reports whether path is one of bases or below one.
func underAny(path string, bases []string) bool {
	for _, b := range bases {
		if path == b || strings.HasPrefix(path, b+"/") {
			return true
		}
	}
	return false
}

// requestLog logs one line per request at debug; streams are logged by
// the hub when they connect and end (at trace level only, so that debug
// stays readable). It counts every 5xx answer of an app's calls for the
// summary; streams are passed through untouched unless logged.
func (s *server) requestLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logged := s.log.GetLevel() <= zerolog.TraceLevel
		if !logged && strings.HasSuffix(r.URL.Path, "/connect") {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		s.countAnswer(r, ww.Status())
		if logged {
			s.log.Debug().Str("method", r.Method).Str("path", r.URL.Path).Int("status", ww.Status()).
				Dur("took", time.Since(start)).Msg("request")
		}
	})
}

// countAnswer counts a 5xx answer to one of an app's calls in its
// failures (the log summary's errors).
func (s *server) countAnswer(r *http.Request, status int) {
	if status >= 500 {
		if a := s.appOf(r.URL.Path); a != nil {
			a.failures.answers5xx.Add(1)
		}
	}
}

// appOf is the app whose browser path or server API path holds path, or
// nil.
func (s *server) appOf(path string) *app {
	for _, a := range s.apps {
		if strings.HasPrefix(path, a.cfg.Path+"/") || strings.HasPrefix(path, "/api/v1/apps/"+a.cfg.Name+"/") {
			return a
		}
	}
	return nil
}
