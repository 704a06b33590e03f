package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// History settings of -history: the configuration the spawned pushd
// runs on instead of its embedded demo.
const (
	historyOff    = "off"
	historyMemory = "memory"
	historyRedis  = "redis"
	// noHistoryPrefix starts the channels that keep no history even
	// with history on, so that one run can compare both.
	noHistoryPrefix = "nh."
)

// serverConfig is the pushd configuration of -history mode: the embedded
// demo's app (demo authentication, any channel joinable), with history
// for channels (but "nh." ones) and users, or without any. The store and
// its Redis come from the environment (historyEnv).
func serverConfig(mode string, size int) string {
	if mode == historyOff {
		return `apps:
  - name: demo
    path: /sse/demo
    auth: {mode: demo}
    api_keys: [demo-key]
    channels:
      namespaces: [{match: "*", join: public}]
`
	}
	return fmt.Sprintf(`apps:
  - name: demo
    path: /sse/demo
    auth: {mode: demo}
    api_keys: [demo-key]
    user_history: {size: %d, ttl: 10m}
    channels:
      namespaces:
        - {prefix: %q, join: public}
        - {match: "*", join: public, history: {size: %d, ttl: 10m}}
`, size, noHistoryPrefix, size)
}

// historyEnv is the environment that selects mode's store.
func historyEnv(mode, redisURL string) []string {
	switch mode {
	case historyMemory:
		return []string{"PUSHD_HISTORY_STORE=memory"}
	case historyRedis:
		return []string{"PUSHD_HISTORY_STORE=redis", "PUSHD_HISTORY_REDIS_URL=" + redisURL}
	}
	return nil
}

// checkHistoryMode validates a -history value; redis needs a Redis.
func checkHistoryMode(mode string, haveRedis bool) error {
	switch mode {
	case historyOff, historyMemory:
		return nil
	case historyRedis:
		if !haveRedis {
			return fmt.Errorf("history redis needs -spawn-redis")
		}
		return nil
	}
	return fmt.Errorf("history %q is not off, memory or redis", mode)
}

// writeServerConfig writes serverConfig into dir (the system's temporary
// directory when empty) and returns the --config arguments for pushd.
func writeServerConfig(dir, mode string, size int) ([]string, error) {
	f, err := os.CreateTemp(dir, "pushbench-config-*.yaml")
	if err != nil {
		return nil, fmt.Errorf("history config: %w", err)
	}
	_, werr := f.WriteString(serverConfig(mode, size))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("history config: %w", werr)
	}
	path, _ := filepath.Abs(f.Name())
	return []string{"--config", path}, nil
}
