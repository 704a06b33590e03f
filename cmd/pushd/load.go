package main

import (
	"cmp"
	"fmt"
	"os"
	"reflect"

	"gopkg.in/yaml.v3"
)

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
    channels:
      namespaces: [{match: "*", join: public, history: {size: 100, ttl: 10m}}]
    user_history: {size: 100, ttl: 10m}
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
		return nil, fmt.Errorf("config %s: %w", cmp.Or(file, "(embedded demo)"), err)
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
