package main

import (
	"net/http"
	"time"

	"github.com/pushd/pushd/internal/admission"
)

// AdmissionConfig bounds the connects this node admits (http.admission):
// over a bound a connect is answered 503 with Retry-After, which sse.js
// waits for, before authentication or the hub see it. It keeps a crowd
// arriving at once — the clients of a node that died — from piling up.
type AdmissionConfig struct {
	// MaxConnecting bounds the connects being admitted at once, from the
	// request's arrival until the stream's response head is written — which
	// includes waiting for the cluster to confirm the connection's routes,
	// a wait that batches: a low bound serialises the batches. Default
	// 10000; -1 off.
	MaxConnecting int `yaml:"max_connecting"`
	// MaxWaiting bounds the connects waiting for a place when
	// MaxConnecting are being admitted; one more is refused at once.
	// Default 10000; -1: none wait.
	MaxWaiting int `yaml:"max_waiting"`
	// Wait bounds how long a connect waits for a place. Default 2 s.
	Wait Duration `yaml:"wait"`
	// Rate bounds the connects admitted per second. Default 0: off.
	Rate int `yaml:"rate"`
	// Burst is how many connects Rate lets through at once. Default: Rate.
	Burst int `yaml:"burst"`
	// RetryAfter is the shortest Retry-After of a refusal; each says a
	// whole number of seconds between it and twice it. Default 1 s.
	RetryAfter Duration `yaml:"retry_after"`
}

// validate fills the defaults.
func (a *AdmissionConfig) validate(p *problems) {
	if a.MaxConnecting < -1 || a.MaxWaiting < -1 || a.Wait < 0 || a.Rate < 0 || a.Burst < 0 || a.RetryAfter < 0 {
		p.addf("http.admission: max_connecting and max_waiting must be -1 or more, wait, rate, burst and retry_after not negative")
	}
	if a.MaxConnecting == 0 {
		a.MaxConnecting = 10000
	}
	if a.MaxWaiting == 0 {
		a.MaxWaiting = 10000
	}
	if a.Wait == 0 {
		a.Wait = Duration(2 * time.Second)
	}
	if a.RetryAfter == 0 {
		a.RetryAfter = Duration(time.Second)
	}
}

// limiter builds the node's connect limiter from a validated config.
func (a AdmissionConfig) limiter() (*admission.Limiter, error) {
	return admission.New(admission.Config{
		MaxInFlight: max(a.MaxConnecting, 0), MaxWaiting: max(a.MaxWaiting, 0), Wait: time.Duration(a.Wait),
		Rate: a.Rate, Burst: a.Burst,
		RetryAfter: time.Duration(a.RetryAfter),
	})
}

// admitted sends an app's connects (GET and POST on {path}/connect)
// through the node's limiter and everything else straight to web.
func (s *server) admitted(web http.Handler) http.Handler {
	limited := s.admit.Wrap(web)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodPost {
			limited.ServeHTTP(w, r)
			return
		}
		web.ServeHTTP(w, r)
	})
}
