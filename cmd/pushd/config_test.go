package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "pushd.yaml")
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestEmbeddedDemoDefaults(t *testing.T) {
	cfg, err := loadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Attack (issue 10 #14): the demo's keys are well known, so it must not
	// listen on every interface unless told to.
	if cfg.Listen != "127.0.0.1:8080" || len(cfg.Apps) != 1 || cfg.Apps[0].Name != "demo" || cfg.Apps[0].Path != "/sse/demo" ||
		cfg.Apps[0].Auth.Mode != "demo" || !cfg.DemoPage || cfg.QoS.Repository != "memory" || cfg.Cluster.Transport != "none" ||
		cfg.GCPercent != 0 {
		t.Errorf("embedded demo config = %+v", cfg)
	}
}

func TestEmbeddedDemoListensWhereTold(t *testing.T) {
	cfg, err := loadConfig("", []string{"PUSHD_LISTEN=:9090"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":9090" {
		t.Errorf("listen = %q, want :9090 from PUSHD_LISTEN", cfg.Listen)
	}
}

func TestHTTPLimitsDefaults(t *testing.T) {
	cfg, err := loadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.HTTP
	if h.ReadHeaderTimeout != Duration(10*time.Second) || h.ReadTimeout != Duration(30*time.Second) ||
		h.IdleTimeout != Duration(120*time.Second) || h.MaxHeaderBytes != 64<<10 {
		t.Errorf("http defaults = %+v", h)
	}
	if _, err := loadConfig("", []string{"PUSHD_HTTP_READ_TIMEOUT=-1s"}); err == nil {
		t.Error("a negative http.read_timeout was accepted")
	}
}

func TestEnvOverrides(t *testing.T) {
	file := writeConfig(t, `
apps:
  - name: hr
    auth: {mode: demo}
  - name: hunter
    auth: {mode: demo}
    cors: [http://a.example]
`)
	cfg, err := loadConfig(file, []string{
		"PUSHD_LISTEN=127.0.0.1:9999", "PUSHD_NODE_ID=pod-7", "PUSHD_LOG_LEVEL=debug", "PUSHD_API_KEY=k1,k2",
		"PUSHD_QOS_REPOSITORY=redis", "PUSHD_REDIS_URL=redis://10.0.0.1:6379/2", "PUSHD_CLUSTER_TRANSPORT=redis",
		"PUSHD_QOS_TTL=90m", "PUSHD_APPS_1_MAX_CONNECTIONS_PER_CLIENT=5", "PUSHD_APPS_1_CORS=http://b.example,http://c.example",
		"PUSHD_APPS_0_ENABLE_JSON_ENDPOINTS=true", "PUSHD_ADMIN_TOKEN=adm", "HOME=/root",
	})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"listen", cfg.Listen == "127.0.0.1:9999"},
		{"node_id", cfg.NodeID == "pod-7"},
		{"log.level", cfg.Log.Level == "debug"},
		{"api key of the first app", strings.Join(cfg.Apps[0].APIKeys, ",") == "k1,k2"},
		{"qos.repository", cfg.QoS.Repository == "redis"},
		{"redis urls", cfg.QoS.RedisURL == "redis://10.0.0.1:6379/2" && cfg.Cluster.RedisURL == "redis://10.0.0.1:6379/2"},
		{"cluster.transport", cfg.Cluster.Transport == "redis"},
		{"qos.ttl", time.Duration(cfg.QoS.TTL) == 90*time.Minute},
		{"apps[1].max_connections_per_client", cfg.Apps[1].MaxConnectionsPerClient == 5},
		{"apps[1].cors", strings.Join(cfg.Apps[1].CORS, " ") == "http://b.example http://c.example"},
		{"apps[0].enable_json_endpoints", cfg.Apps[0].EnableJSONEndpoints},
		{"default path", cfg.Apps[1].Path == "/sse/hunter"},
		{"admin.token", cfg.Admin.Token == "adm"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s not applied: %+v", c.name, cfg)
		}
	}
}

func TestInvalidConfigNamesTheKey(t *testing.T) {
	cases := []struct{ yaml, env, want string }{
		{"apps: []", "", "apps: at least one app"},
		{"apps: [{name: a, auth: {mode: magic}}]", "", "apps[0].auth.mode"},
		{"apps: [{name: a, path: nope, auth: {mode: demo}}]", "", "apps[0].path"},
		{"apps: [{name: a, auth: {mode: demo}}, {name: a, auth: {mode: demo}}]", "", "apps[1]"},
		{"apps: [{name: a, auth: {mode: webhook}}]", "", "apps[0].auth.webhook.url"},
		{"cluster: {transport: carrier-pigeon}\napps: [{name: a, auth: {mode: demo}}]", "", "cluster.transport"},
		{"cluster: {transport: nacos}\napps: [{name: a, auth: {mode: demo}}]", "", "cluster.nacos.servers"},
		{"qos: {repository: disk}\napps: [{name: a, auth: {mode: demo}}]", "", "qos.repository"},
		{"apps: [{name: a, auth: {mode: demo}}]", "PUSHD_QOS_TTL=soon", "PUSHD_QOS_TTL"},
		{"apps: [{name: a, auth: {mode: demo}}]", "PUSHD_LOG_LEVEL=loud", "log.level"},
		{"apps: [{name: a, auth: {mode: demo}, heartbeat: often}]", "", `apps[0].heartbeat: "often" is not a duration (try "25s")`},
		{"apps: [{name: a, auth: {mode: demo}, queue_size: lots}]", "", `apps[0].queue_size: "lots" is not an integer`},
		{"lisen: typo\napps: [{name: a, auth: {mode: demo}}]", "", `lisen: unknown key (line 1); did you mean "listen"?`},
		{"apps: [{name: a, auth: {mode: demo, jtw: {}}}]", "", `apps[0].auth.jtw: unknown key (line 1); did you mean "jwt"?`},
		{"apps: [{name: a, auth: {mode: demo}}]", "PUSHD_APPS_1_PATH=/sse/b", "PUSHD_APPS_1_PATH: there is no item 1"},
	}
	for _, c := range cases {
		var env []string
		if c.env != "" {
			env = []string{c.env}
		}
		_, err := loadConfig(writeConfig(t, c.yaml), env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config %q env %q: error %v, want one naming %q", c.yaml, c.env, err, c.want)
		}
	}
}

// TestConfigNamesEveryProblem: one run lists every problem, not only the
// first.
func TestConfigNamesEveryProblem(t *testing.T) {
	_, err := loadConfig(writeConfig(t, "listne: x\nlog: {level: loud}\napps: [{name: a, heartbeat: fast, auth: {mode: magic}}]"), nil)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"listne: unknown key", "apps[0].heartbeat"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("decode problems %q lack %q", err, want)
		}
	}
	_, err = loadConfig(writeConfig(t, "log: {level: loud}\napps: [{name: a, auth: {mode: magic}}]"), nil)
	for _, want := range []string{"log.level", "apps[0].auth.mode"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validation problems %v lack %q", err, want)
		}
	}
}

// TestComposeConfigLoads keeps the docker-compose pods' configuration valid
// for both transports.
func TestComposeConfigLoads(t *testing.T) {
	for _, transport := range []string{"nacos", "redis"} {
		cfg, err := loadConfig("../../deploy/pushd.yaml", []string{"PUSHD_NODE_ID=pushd1", "PUSHD_CLUSTER_TRANSPORT=" + transport})
		if err != nil {
			t.Fatalf("%s: %v", transport, err)
		}
		if cfg.Cluster.Transport != transport || cfg.Admin.Token == "" || len(cfg.Apps) != 1 {
			t.Errorf("%s: %+v", transport, cfg)
		}
	}
}

// TestComposeFileIsValid validates docker-compose.yml with Debian's
// docker-compose, for both profiles (scripts/test.sh installs it).
func TestComposeFileIsValid(t *testing.T) {
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("docker-compose is not installed: scripts/test.sh installs it")
		}
		t.Skip("docker-compose is not installed (scripts/test.sh installs it)")
	}
	for _, profile := range []string{"redis", "nacos"} {
		cmd := exec.Command(bin, "-f", "../../docker-compose.yml", "--profile", profile, "config", "-q")
		cmd.Env = append(os.Environ(), "COMPOSE_PROJECT_NAME=pushd-check")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("docker-compose config --profile %s: %v\n%s", profile, err, out)
		}
	}
}

func TestLogFormatAutoWritesJSONToAFile(t *testing.T) {
	cfg, err := loadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Log.Format != "auto" {
		t.Fatalf("default log.format %q, want auto", cfg.Log.Format)
	}
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	log := newLogger(cfg, f)
	log.Info().Str("app", "demo").Msg("hello")
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	if err := json.Unmarshal(b, &line); err != nil || line["message"] != "hello" || strings.Contains(string(b), "\x1b[") {
		t.Fatalf("log line in a file is not one plain JSON object: %q (%v)", b, err)
	}
	if n := strings.Count(string(b), `"node"`); n != 1 {
		t.Errorf("%d node keys in %q", n, b)
	}
}
