package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pushd/pushd/internal/admission"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/notify"
	"github.com/pushd/pushd/pkg/qos"
	redistransport "github.com/pushd/pushd/pkg/transport/redis"
)

// metrics registers the Prometheus collectors of every app.
func (s *server) metrics() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, a := range s.apps {
		h := a.hub
		labels := prometheus.Labels{"app": a.cfg.Name}
		gauge := func(name, help string, fn func(hub.Stats) int) {
			reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels},
				func() float64 { return float64(fn(h.LocalStats())) }))
		}
		gauge("pushd_connections", "Open SSE connections on this node.", func(st hub.Stats) int { return st.Connections })
		gauge("pushd_users", "Users with a connection on this node.", func(st hub.Stats) int { return st.Users })
		gauge("pushd_channels", "Channels with a connection on this node.", func(st hub.Stats) int { return st.Channels })
		counter := counterFunc(reg, labels, h.Counters)
		counter("pushd_sends_total", "Sends published from this node.", func(c hub.Counters) uint64 { return c.Sends })
		counter("pushd_deliveries_total", "Events queued to connections of this node.", func(c hub.Counters) uint64 { return c.Deliveries })
		counter("pushd_slow_disconnects_total", "Connections closed because their queue overflowed.", func(c hub.Counters) uint64 { return c.SlowDisconnects })
		counter("pushd_cluster_requests_total", "Requests of other nodes served by this node.", func(c hub.Counters) uint64 { return c.PeerRequests })
		counter("pushd_qos_stored_total", "QoS messages stored.", func(c hub.Counters) uint64 { return c.QoS.Stored })
		counter("pushd_qos_acked_total", "QoS messages acknowledged.", func(c hub.Counters) uint64 { return c.QoS.Acked })
		counter("pushd_qos_redelivered_total", "QoS messages sent again.", func(c hub.Counters) uint64 { return c.QoS.Redelivered })
		if n := a.notifier; n != nil {
			hooks := counterFunc(reg, labels, n.Stats)
			hooks("pushd_hooks_sent_total", "Presence events the backend accepted.", func(st notify.Stats) uint64 { return st.Sent })
			hooks("pushd_hooks_covered_total", "Online/offline events left to another node of the cluster.", func(st notify.Stats) uint64 { return st.Covered })
			hooks("pushd_hooks_failed_total", "Presence events given up after their attempts.", func(st notify.Stats) uint64 { return st.Failed })
			hooks("pushd_hooks_dropped_total", "Presence events dropped by a full queue.", func(st notify.Stats) uint64 { return st.Dropped })
		}
	}
	reg.MustRegister(s.clusterCalls, s.clusterErrors)
	admitted := counterFunc(reg, nil, s.admit.Stats)
	admitted("pushd_connects_admitted_total", "Connects admitted by http.admission.", func(st admission.Stats) uint64 { return st.Admitted })
	admitted("pushd_connects_refused_total", "Connects answered 503 by http.admission (at once or per second).", func(st admission.Stats) uint64 { return st.Refused })
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pushd_connects_admitting",
		Help: "Connects being admitted now (counted by http.admission.max_connecting)."}, func() float64 { return float64(s.admit.Stats().InFlight) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pushd_connects_waiting",
		Help: "Connects waiting for a place among those being admitted (http.admission.max_waiting)."}, func() float64 { return float64(s.admit.Stats().Waiting) }))
	if rt, ok := s.transport.(redisStats); ok {
		transport := counterFunc(reg, nil, rt.Stats)
		transport("pushd_cluster_redis_resubscribes_total", "Redis subscriptions re-established after a loss.",
			func(st redistransport.Stats) uint64 { return st.Resubscribes })
		transport("pushd_cluster_redis_probe_failures_total", "Subscription probes that did not come back.",
			func(st redistransport.Stats) uint64 { return st.ProbeFailures })
		transport("pushd_cluster_redis_dropped_requests_total", "Requests of other nodes dropped because the queue was full.",
			func(st redistransport.Stats) uint64 { return st.DroppedRequests })
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pushd_cluster_redis_subscribed_channels",
			Help: "Routing key channels this node is subscribed to."}, func() float64 { return float64(rt.Stats().Subscribed) }))
	}
	if rep, ok := s.repo.(qos.StatsReporter); ok {
		store := counterFunc(reg, nil, rep.Stats)
		store("pushd_qos_store_saved_total", "Messages saved in the QoS store by this node.", func(st qos.Stats) uint64 { return st.Stored })
		store("pushd_qos_store_acked_total", "Messages acknowledged in the QoS store by this node.", func(st qos.Stats) uint64 { return st.Acked })
		store("pushd_qos_store_expired_total", "QoS messages that expired unacknowledged.", func(st qos.Stats) uint64 { return st.Expired })
		store("pushd_qos_store_evicted_total", "QoS messages dropped by a full inbox or store.", func(st qos.Stats) uint64 { return st.Evicted })
	}
	return reg
}

// counterFunc returns a function that registers a counter read, at each
// scrape, from one field of stats().
func counterFunc[S any](reg *prometheus.Registry, labels prometheus.Labels, stats func() S) func(name, help string, field func(S) uint64) {
	return func(name, help string, field func(S) uint64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(field(stats())) }))
	}
}
