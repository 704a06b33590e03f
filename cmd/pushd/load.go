package main

import (
	"cmp"
	"errors"
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
	cfg, err := loadConfigAll(file, env)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// loadConfigAll is loadConfig that goes on after problems, so that every
// one of them is in the error: the configuration is returned with them
// (its bad values left zero) unless the file cannot be read as YAML.
func loadConfigAll(file string, env []string) (*Config, error) {
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
	envErr := applyEnv(&cfg, env)
	cfg.warnings = unknownEnv(env)
	return &cfg, errors.Join(probs.err(), envErr, cfg.validate())
}
