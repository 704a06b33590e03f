package test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The deploy files are checked against a real pushd: every metric the
// Grafana dashboard queries must be on /metrics, and the Kubernetes
// manifests must hang together and carry a configuration that pushd loads
// and serves its probes with.
//
// The manifests are not checked with `kubectl create --dry-run=client`: it
// needs an API server even then (it asks it for the resource mapping, and
// for the OpenAPI schema unless --validate=false), which the test machines
// do not have. Instead each object is decoded strictly into the subset of
// the Kubernetes API types the manifests use (a misspelt or misplaced field
// fails), and the cross references a server would not check either —
// selectors, named ports, the mounted ConfigMap key, the grace period
// against the drain — are checked here.

const (
	dashboardFile = "../deploy/grafana/pushd.json"
	kubernetesDir = "../deploy/kubernetes"
)

// scrapeLabels are added by Prometheus to every series it scrapes; pushd's
// /metrics does not have them.
var scrapeLabels = map[string]bool{"instance": true, "job": true}

// dashboardMetrics are what issue 13 asks the dashboard to show:
// connections, users, send and delivery rates, slow disconnects, QoS
// stored/acked/redelivered, cluster call latency and errors, hooks.
var dashboardMetrics = []string{
	"pushd_connections", "pushd_users", "pushd_sends_total", "pushd_deliveries_total",
	"pushd_slow_disconnects_total", "pushd_qos_stored_total", "pushd_qos_acked_total",
	"pushd_qos_redelivered_total", "pushd_cluster_call_seconds_bucket", "pushd_cluster_call_errors_total",
	"pushd_hooks_sent_total", "pushd_hooks_failed_total", "pushd_hooks_dropped_total",
}

// The dashboard metrics test provokes every observation a labelled series
// needs, instead of accepting a HELP line: a histogram or counter vector
// with no observation yet is not on /metrics at all. A send and a users
// query through the Redis transport make pushd_cluster_call_seconds{op},
// and sends after the transport's Redis is killed make
// pushd_cluster_call_errors_total{op}. Every queried series then has at
// least one sample, and the labels the dashboard selects and groups by are
// checked on those samples.
func TestDeployGrafanaDashboardMetrics(t *testing.T) {
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	queries := dashboardQueries(t, raw)
	queried := map[string]bool{}
	for _, q := range queries {
		for m := range q.metrics {
			queried[m] = true
		}
	}
	for _, m := range dashboardMetrics {
		if !queried[m] {
			t.Errorf("the dashboard queries no %s", m)
		}
	}

	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hooks.Close)
	redis := startRedis(t, false)
	n := startPushd(t, fmt.Sprintf(`
node_id: dashboard
qos: {repository: memory}
cluster: {transport: redis, redis_url: %q, timeout: 1s}
apps:
  - name: demo
    auth: {mode: demo}
    api_keys: [demo-key]
    hooks: {url: %q, secret: hooks-secret-for-the-dashboard-test}
`, redis.URL(), hooks.URL))

	send := func() int {
		code, _ := apiCall(t, n.url, http.MethodPost, "send",
			map[string]any{"to": map[string]any{"userIds": []string{"u1"}}, "event": "e", "data": "d"})
		return code
	}
	if code := send(); code != http.StatusOK {
		t.Fatalf("send: %d", code)
	}
	if code, body := apiCall(t, n.url, http.MethodGet, "users", nil); code != http.StatusOK {
		t.Fatalf("users: %d %s", code, body)
	}
	redis.Kill()
	var exposed map[string]map[string]bool
	waitFor(t, 20*time.Second, func() error {
		send() // fails to reach the cluster: pushd_cluster_call_errors_total{op="deliver"}
		exposed = scrape(t, n.url)
		if _, ok := exposed["pushd_cluster_call_errors_total"]; !ok {
			return errors.New("no cluster call error counted yet")
		}
		return nil
	})

	for _, q := range queries {
		var labels []map[string]bool
		for m, selected := range q.metrics {
			have, ok := exposed[m]
			if !ok {
				t.Errorf("%s: %s is not on /metrics", q.where, m)
				continue
			}
			labels = append(labels, have)
			for _, l := range selected {
				if !have[l] && !scrapeLabels[l] {
					t.Errorf("%s: %s has no label %q", q.where, m, l)
				}
			}
		}
		for _, l := range q.grouping {
			if !scrapeLabels[l] && !slices.ContainsFunc(labels, func(have map[string]bool) bool { return have[l] }) {
				t.Errorf("%s: no metric of %q has the label %q it groups by", q.where, q.expr, l)
			}
		}
	}
}

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Panels        []dashboardPanel
	Templating    struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type dashboardPanel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []dashboardPanel `json:"panels"` // of a collapsed row
}

// dashboardQuery is one PromQL expression of the dashboard.
type dashboardQuery struct {
	where    string
	expr     string
	metrics  map[string][]string // metric → the labels its selectors match on
	grouping []string            // labels of by, without, on and ignoring clauses
}

// dashboardQueries checks the dashboard's layout and returns its panels'
// and variables' queries.
func dashboardQueries(t *testing.T, raw []byte) []dashboardQuery {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion == 0 {
		t.Errorf("dashboard: uid %q, title %q, schemaVersion %d: all are needed", d.UID, d.Title, d.SchemaVersion)
	}
	var queries []dashboardQuery
	add := func(where, expr string) {
		q, err := parsePromQL(expr)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			return
		}
		q.where = where
		queries = append(queries, q)
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if json.Unmarshal(v.Query, &q) != nil {
			_ = json.Unmarshal(v.Query, &q.Query) // the older form: a plain string
		}
		m := labelValuesRe.FindStringSubmatch(q.Query)
		if m == nil {
			t.Errorf("variable %s: %q is not label_values(selector, label)", v.Name, q.Query)
			continue
		}
		// The label it lists must be on the selected metric.
		add("variable "+v.Name, m[1]+" by ("+m[2]+")")
	}
	for _, v := range []string{"datasource", "app", "instance"} {
		if !vars[v] {
			t.Errorf("dashboard: no variable %s", v)
		}
	}
	ids := map[int]bool{}
	var walk func(ps []dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
			if ids[p.ID] {
				t.Errorf("%s: the id is used twice", where)
			}
			ids[p.ID] = true
			if g := p.GridPos; g.W < 1 || g.H < 1 || g.X < 0 || g.X+g.W > 24 {
				t.Errorf("%s: gridPos %+v is outside the 24 columns", where, g)
			}
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: no query", where)
			}
			refs := map[string]bool{}
			for _, tg := range p.Targets {
				if tg.RefID == "" || refs[tg.RefID] {
					t.Errorf("%s: refId %q is empty or used twice", where, tg.RefID)
				}
				refs[tg.RefID] = true
				add(where+" "+tg.RefID, tg.Expr)
			}
		}
	}
	walk(d.Panels)
	return queries
}

var (
	labelValuesRe = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)
	rangeRe       = regexp.MustCompile(`\[[^\]]*\]`)
	selectorRe    = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}`)
	matcherRe     = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*(?:,|$)`)
	groupingRe    = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	stringRe      = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	identRe       = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	sampleLabelRe = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`)
	promKeywords  = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true,
		"group_right": true, "bool": true, "and": true, "or": true, "unless": true, "offset": true, "inf": true, "nan": true}
)

// parsePromQL finds the metric names of expr, the labels each selector
// matches on and the labels it groups by. It knows enough PromQL for the
// dashboard's expressions: selectors, range vectors, function calls,
// aggregations with by/without, binary operators and numbers.
func parsePromQL(expr string) (dashboardQuery, error) {
	q := dashboardQuery{expr: expr, metrics: map[string][]string{}}
	s := rangeRe.ReplaceAllString(expr, " ")
	var bad error
	s = selectorRe.ReplaceAllStringFunc(s, func(sel string) string {
		m := selectorRe.FindStringSubmatch(sel)
		body := strings.TrimSpace(m[2])
		found := matcherRe.FindAllStringSubmatch(body, -1)
		if rest := matcherRe.ReplaceAllString(body, ""); strings.TrimSpace(rest) != "" {
			bad = fmt.Errorf("%q: cannot read the matchers %q", expr, body)
		}
		for _, f := range found {
			q.metrics[m[1]] = append(q.metrics[m[1]], f[1])
		}
		return " " + m[1] + " "
	})
	if bad != nil {
		return q, bad
	}
	for _, g := range groupingRe.FindAllStringSubmatch(s, -1) {
		for l := range strings.SplitSeq(g[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				q.grouping = append(q.grouping, l)
			}
		}
	}
	s = groupingRe.ReplaceAllString(s, " ")
	s = stringRe.ReplaceAllString(s, " ")
	for _, loc := range identRe.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsAny(s[loc[0]-1:loc[0]], "0123456789.") {
			continue // part of a number such as 1e3
		}
		if strings.HasPrefix(strings.TrimSpace(s[loc[1]:]), "(") || promKeywords[strings.ToLower(name)] {
			continue // a function or an operator
		}
		if _, ok := q.metrics[name]; !ok {
			q.metrics[name] = nil
		}
	}
	if len(q.metrics) == 0 {
		return q, fmt.Errorf("%q: no metric found", expr)
	}
	return q, nil
}

// scrape reads base/metrics and returns each sample name with the label
// names its samples have.
func scrape(t testing.TB, base string) map[string]map[string]bool {
	t.Helper()
	code, body := do(t, http.MethodGet, base+"/metrics", "", nil)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	out := map[string]map[string]bool{}
	for line := range strings.SplitSeq(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		end := strings.IndexAny(line, "{ ")
		if end < 0 {
			continue
		}
		name := line[:end]
		if out[name] == nil {
			out[name] = map[string]bool{}
		}
		if line[end] == '{' {
			labels := line[end+1 : strings.LastIndexByte(line, '}')]
			for _, m := range sampleLabelRe.FindAllStringSubmatch(labels, -1) {
				out[name][m[1]] = true
			}
		}
	}
	return out
}

// TestDeployKubernetesManifests decodes every manifest of deploy/kubernetes
// strictly, checks what refers to what, loads the ConfigMap's pushd.yaml
// with `pushd checkconfig` and runs pushd with it (and the environment the
// Deployment gives it) to see the probes and the scrape path answer.
func TestDeployKubernetesManifests(t *testing.T) {
	m := readManifests(t)
	dep, svc, pdb, cm := m.deployment, m.service, m.pdb, m.configMap
	if dep == nil || svc == nil || pdb == nil || cm == nil {
		t.Fatalf("deploy/kubernetes needs a Deployment, a Service, a PodDisruptionBudget and a ConfigMap; found kinds %v", m.kinds)
	}
	pod := dep.Spec.Template
	if !subset(dep.Spec.Selector.MatchLabels, pod.Metadata.Labels) || len(dep.Spec.Selector.MatchLabels) == 0 {
		t.Errorf("Deployment: selector %v does not select its pods %v", dep.Spec.Selector.MatchLabels, pod.Metadata.Labels)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("Deployment: %d containers, want pushd alone", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	port := func(where, p string) int {
		if n, err := strconv.Atoi(p); err == nil {
			return n
		}
		n, ok := ports[p]
		if !ok {
			t.Errorf("%s: port %q is not a port of the container %v", where, p, ports)
		}
		return n
	}

	// The configuration: the file --config names, in the mounted ConfigMap.
	i := slices.Index(c.Args, "--config")
	if i < 0 || i+1 >= len(c.Args) {
		t.Fatalf("container args %v: no --config FILE", c.Args)
	}
	file := c.Args[i+1]
	mount := slices.IndexFunc(c.VolumeMounts, func(v k8sVolumeMount) bool { return v.MountPath == path.Dir(file) })
	if mount < 0 {
		t.Fatalf("--config %s: no volume is mounted at %s", file, path.Dir(file))
	}
	vol := slices.IndexFunc(pod.Spec.Volumes, func(v k8sVolume) bool { return v.Name == c.VolumeMounts[mount].Name })
	if vol < 0 || pod.Spec.Volumes[vol].ConfigMap.Name != cm.Metadata.Name {
		t.Fatalf("--config %s: the volume mounted there is not the ConfigMap %s", file, cm.Metadata.Name)
	}
	config, ok := cm.Data[path.Base(file)]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s (--config %s)", cm.Metadata.Name, path.Base(file), file)
	}
	var cfg struct {
		Listen   string `yaml:"listen"`
		Shutdown struct {
			DrainWindow string `yaml:"drain_window"`
			Timeout     string `yaml:"timeout"`
		} `yaml:"shutdown"`
		Cluster struct{ Transport string }  `yaml:"cluster"`
		QoS     struct{ Repository string } `yaml:"qos"`
		Apps    []struct{ Path string }     `yaml:"apps"`
	}
	if err := yaml.Unmarshal([]byte(config), &cfg); err != nil {
		t.Fatalf("ConfigMap %s: %v", cm.Metadata.Name, err)
	}
	if dep.Spec.Replicas > 1 && (cfg.Cluster.Transport == "" || cfg.Cluster.Transport == "none") {
		t.Errorf("%d replicas without a cluster transport: a send reaches only the pod it lands on", dep.Spec.Replicas)
	}
	if cfg.Cluster.Transport != "redis" || cfg.QoS.Repository != "redis" {
		t.Errorf("the example is the Redis one: cluster.transport %q, qos.repository %q", cfg.Cluster.Transport, cfg.QoS.Repository)
	}
	if _, p, _ := strings.Cut(cfg.Listen, ":"); p != strconv.Itoa(ports["http"]) {
		t.Errorf("pushd listens on %q, the container port http is %d", cfg.Listen, ports["http"])
	}

	// Probes: httpGet (the image has no shell), on the container's port.
	for _, p := range []struct {
		name  string
		probe *k8sProbe
		path  string
	}{{"readinessProbe", c.ReadinessProbe, "/readyz"}, {"livenessProbe", c.LivenessProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Fatalf("%s: want an httpGet probe of %s", p.name, p.path)
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s: path %q, want %s", p.name, p.probe.HTTPGet.Path, p.path)
		}
		if port(p.name, p.probe.HTTPGet.Port) != ports["http"] {
			t.Errorf("%s: port %q is not pushd's http port", p.name, p.probe.HTTPGet.Port)
		}
	}

	// The drain: preStop, then SIGTERM's drain window and shutdown
	// timeout, all within the grace period.
	pre := c.Lifecycle.PreStop
	if pre == nil || pre.Sleep == nil || pre.Sleep.Seconds <= 0 {
		t.Fatal("preStop: want a sleep (the image has no shell to exec one), so the endpoint removal lands before SIGTERM")
	}
	drain, err := time.ParseDuration(cfg.Shutdown.DrainWindow)
	if err != nil {
		t.Fatalf("ConfigMap: shutdown.drain_window %q: %v (set it explicitly)", cfg.Shutdown.DrainWindow, err)
	}
	timeout, err := time.ParseDuration(cfg.Shutdown.Timeout)
	if err != nil {
		t.Fatalf("ConfigMap: shutdown.timeout %q: %v (set it explicitly)", cfg.Shutdown.Timeout, err)
	}
	need := time.Duration(pre.Sleep.Seconds)*time.Second + drain + timeout
	if grace := time.Duration(pod.Spec.TerminationGracePeriodSeconds) * time.Second; grace <= need {
		t.Errorf("terminationGracePeriodSeconds %v: not longer than preStop %ds + drain_window %v + timeout %v",
			grace, pre.Sleep.Seconds, drain, timeout)
	}

	// Service, PodDisruptionBudget and Ingress reach the pods.
	if !subset(svc.Spec.Selector, pod.Metadata.Labels) || len(svc.Spec.Selector) == 0 {
		t.Errorf("Service: selector %v does not select the pods %v", svc.Spec.Selector, pod.Metadata.Labels)
	}
	svcPorts := map[string]bool{}
	for _, p := range svc.Spec.Ports {
		svcPorts[p.Name] = true
		if port("Service port "+p.Name, p.TargetPort) != ports["http"] {
			t.Errorf("Service port %s: targetPort %q is not pushd's http port", p.Name, p.TargetPort)
		}
	}
	if !subset(pdb.Spec.Selector.MatchLabels, pod.Metadata.Labels) || len(pdb.Spec.Selector.MatchLabels) == 0 {
		t.Errorf("PodDisruptionBudget: selector %v does not select the pods", pdb.Spec.Selector.MatchLabels)
	}
	if (pdb.Spec.MaxUnavailable == "") == (pdb.Spec.MinAvailable == "") {
		t.Errorf("PodDisruptionBudget: set one of maxUnavailable and minAvailable")
	}
	if n, err := strconv.Atoi(pdb.Spec.MinAvailable); err == nil && n >= dep.Spec.Replicas {
		t.Errorf("PodDisruptionBudget: minAvailable %d of %d replicas blocks every node drain", n, dep.Spec.Replicas)
	}
	if ing := m.ingress; ing != nil {
		checkIngress(t, ing, svc.Metadata.Name, svcPorts, cfg.Apps)
	}

	// The environment the Deployment gives pushd, secrets filled in.
	var env []string
	for _, e := range c.Env {
		switch v := e.ValueFrom; {
		case v == nil:
			env = append(env, e.Name+"="+e.Value)
		case v.FieldRef != nil && v.FieldRef.FieldPath == "metadata.name":
			env = append(env, e.Name+"=pushd-5d8f7c9b4-x2x7q")
		case v.SecretKeyRef != nil:
			env = append(env, e.Name+"=test-"+v.SecretKeyRef.Key+"-0123456789abcdef0123456789abcdef")
		default:
			t.Errorf("env %s: the test does not know this valueFrom", e.Name)
		}
	}
	f := filepath.Join(t.TempDir(), path.Base(file))
	if err := os.WriteFile(f, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	check := exec.Command(pushdBin, "checkconfig", f)
	check.Env = append(os.Environ(), env...)
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("pushd checkconfig of the ConfigMap's %s: %v\n%s", path.Base(file), err, out)
	}

	redis := startRedis(t, false)
	n := startPushd(t, config, append(env, "PUSHD_REDIS_URL="+redis.URL())...)
	scrapePath := pod.Metadata.Annotations["prometheus.io/path"]
	for _, p := range []string{c.ReadinessProbe.HTTPGet.Path, c.LivenessProbe.HTTPGet.Path, scrapePath} {
		if code, body := do(t, http.MethodGet, n.url+p, "", nil); code != http.StatusOK {
			t.Errorf("GET %s: %d %s", p, code, body)
		}
	}
	if _, ok := scrape(t, n.url)["pushd_connections"]; !ok || scrapePath != "/metrics" {
		t.Errorf("prometheus.io/path %q: not pushd's metrics", scrapePath)
	}
	if p := pod.Metadata.Annotations["prometheus.io/port"]; p == "" || port("prometheus.io/port", p) != ports["http"] {
		t.Errorf("prometheus.io/port %q is not pushd's http port", p)
	}
}

// checkIngress checks that the Ingress routes the app paths to the Service
// with what SSE needs from ingress-nginx.
func checkIngress(t *testing.T, ing *k8sIngress, service string, ports map[string]bool, apps []struct{ Path string }) {
	t.Helper()
	a := ing.Metadata.Annotations
	if a["nginx.ingress.kubernetes.io/proxy-buffering"] != "off" {
		t.Errorf("Ingress: proxy-buffering %q: events would wait in nginx's buffer", a["nginx.ingress.kubernetes.io/proxy-buffering"])
	}
	if s, _ := strconv.Atoi(a["nginx.ingress.kubernetes.io/proxy-read-timeout"]); s < 300 {
		t.Errorf("Ingress: proxy-read-timeout %q: want a long one (seconds)", a["nginx.ingress.kubernetes.io/proxy-read-timeout"])
	}
	routed := map[string]bool{}
	for _, r := range ing.Spec.Rules {
		for _, p := range r.HTTP.Paths {
			routed[p.Path] = true
			if b := p.Backend.Service; b.Name != service || !ports[b.Port.Name] {
				t.Errorf("Ingress path %s: backend %s:%s is not a port of the Service %s", p.Path, b.Name, b.Port.Name, service)
			}
		}
	}
	for _, app := range apps {
		if !routed[app.Path] {
			t.Errorf("Ingress: the app path %s is not routed", app.Path)
		}
	}
}

func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// manifests are the objects of deploy/kubernetes, by kind.
type manifests struct {
	kinds      []string
	configMap  *k8sConfigMap
	deployment *k8sDeployment
	service    *k8sService
	pdb        *k8sPDB
	ingress    *k8sIngress
}

// readManifests decodes every document of every YAML file of
// deploy/kubernetes into its type, refusing fields the type does not have.
func readManifests(t *testing.T) *manifests {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(kubernetesDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", kubernetesDir, err)
	}
	m := &manifests{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for {
			var doc yaml.Node
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var head k8sObject
			if err := doc.Decode(&head); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			where := fmt.Sprintf("%s: %s %q", filepath.Base(f), head.Kind, head.Metadata.Name)
			m.kinds = append(m.kinds, head.Kind)
			var obj any
			switch head.APIVersion + " " + head.Kind {
			case "v1 ConfigMap":
				m.configMap = once(t, where, m.configMap)
				obj = m.configMap
			case "apps/v1 Deployment":
				m.deployment = once(t, where, m.deployment)
				obj = m.deployment
			case "v1 Service":
				m.service = once(t, where, m.service)
				obj = m.service
			case "policy/v1 PodDisruptionBudget":
				m.pdb = once(t, where, m.pdb)
				obj = m.pdb
			case "networking.k8s.io/v1 Ingress":
				m.ingress = once(t, where, m.ingress)
				obj = m.ingress
			default:
				t.Fatalf("%s: apiVersion %q kind %q: not a kind this test knows", where, head.APIVersion, head.Kind)
			}
			strictDecode(t, where, &doc, obj)
			if head.Metadata.Name == "" || head.Metadata.Labels["app.kubernetes.io/name"] != "pushd" {
				t.Errorf("%s: want a name and the label app.kubernetes.io/name: pushd", where)
			}
		}
	}
	return m
}

// once returns a new T, failing the test when there already is one.
func once[T any](t *testing.T, where string, have *T) *T {
	t.Helper()
	if have != nil {
		t.Fatalf("%s: a second object of this kind", where)
	}
	return new(T)
}

// strictDecode decodes doc into obj, failing on a field obj's type lacks:
// a misspelt or misplaced key, or one the test does not know yet (add it
// to the types below after checking the Kubernetes API reference).
func strictDecode(t *testing.T, where string, doc *yaml.Node, obj any) {
	t.Helper()
	raw, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(obj); err != nil {
		t.Errorf("%s: %v", where, err)
	}
}

// The subset of the Kubernetes API types the manifests use. An
// IntOrString field is a string: YAML integers decode into it too.

type k8sMeta struct {
	Name        string            `yaml:"name"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type k8sObject struct {
	APIVersion string  `yaml:"apiVersion"`
	Kind       string  `yaml:"kind"`
	Metadata   k8sMeta `yaml:"metadata"`
}

type k8sSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type k8sConfigMap struct {
	k8sObject `yaml:",inline"`
	Data      map[string]string `yaml:"data"`
}

type k8sDeployment struct {
	k8sObject `yaml:",inline"`
	Spec      struct {
		Replicas int         `yaml:"replicas"`
		Selector k8sSelector `yaml:"selector"`
		Strategy struct {
			Type          string `yaml:"type"`
			RollingUpdate struct {
				MaxSurge       string `yaml:"maxSurge"`
				MaxUnavailable string `yaml:"maxUnavailable"`
			} `yaml:"rollingUpdate"`
		} `yaml:"strategy"`
		Template struct {
			Metadata k8sMeta    `yaml:"metadata"`
			Spec     k8sPodSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sPodSpec struct {
	TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot   bool `yaml:"runAsNonRoot"`
		RunAsUser      int  `yaml:"runAsUser"`
		RunAsGroup     int  `yaml:"runAsGroup"`
		SeccompProfile struct {
			Type string `yaml:"type"`
		} `yaml:"seccompProfile"`
	} `yaml:"securityContext"`
	TopologySpreadConstraints []struct {
		MaxSkew           int         `yaml:"maxSkew"`
		TopologyKey       string      `yaml:"topologyKey"`
		WhenUnsatisfiable string      `yaml:"whenUnsatisfiable"`
		LabelSelector     k8sSelector `yaml:"labelSelector"`
	} `yaml:"topologySpreadConstraints"`
	Containers []k8sContainer `yaml:"containers"`
	Volumes    []k8sVolume    `yaml:"volumes"`
}

type k8sVolume struct {
	Name      string `yaml:"name"`
	ConfigMap struct {
		Name string `yaml:"name"`
	} `yaml:"configMap"`
}

type k8sVolumeMount struct {
	Name      string `yaml:"name"`
	MountPath string `yaml:"mountPath"`
	ReadOnly  bool   `yaml:"readOnly"`
}

type k8sContainer struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
		Protocol      string `yaml:"protocol"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	Lifecycle      struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []k8sVolumeMount `yaml:"volumeMounts"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
	InitialDelaySeconds int `yaml:"initialDelaySeconds"`
	PeriodSeconds       int `yaml:"periodSeconds"`
	TimeoutSeconds      int `yaml:"timeoutSeconds"`
	FailureThreshold    int `yaml:"failureThreshold"`
}

type k8sService struct {
	k8sObject `yaml:",inline"`
	Spec      struct {
		Type     string            `yaml:"type"`
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
			Protocol   string `yaml:"protocol"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type k8sPDB struct {
	k8sObject `yaml:",inline"`
	Spec      struct {
		MaxUnavailable string      `yaml:"maxUnavailable"`
		MinAvailable   string      `yaml:"minAvailable"`
		Selector       k8sSelector `yaml:"selector"`
	} `yaml:"spec"`
}

type k8sIngress struct {
	k8sObject `yaml:",inline"`
	Spec      struct {
		IngressClassName string `yaml:"ingressClassName"`
		TLS              []struct {
			Hosts      []string `yaml:"hosts"`
			SecretName string   `yaml:"secretName"`
		} `yaml:"tls"`
		Rules []struct {
			Host string `yaml:"host"`
			HTTP struct {
				Paths []struct {
					Path     string `yaml:"path"`
					PathType string `yaml:"pathType"`
					Backend  struct {
						Service struct {
							Name string `yaml:"name"`
							Port struct {
								Name   string `yaml:"name"`
								Number int    `yaml:"number"`
							} `yaml:"port"`
						} `yaml:"service"`
					} `yaml:"backend"`
				} `yaml:"paths"`
			} `yaml:"http"`
		} `yaml:"rules"`
	} `yaml:"spec"`
}
