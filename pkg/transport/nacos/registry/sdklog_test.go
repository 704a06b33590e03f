package registry

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pushd/pushd/internal/await"
	"github.com/pushd/pushd/internal/syncbuf"
)

// jsonLines decodes every line of out, failing t for one that is not a
// JSON object.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("not a JSON line: %q", line)
			continue
		}
		lines = append(lines, m)
	}
	return lines
}

func TestSDKLoggerLevels(t *testing.T) {
	var buf syncbuf.Buffer
	l := newSDKLogger(zerolog.New(&buf), "info")
	l.Debug("not shown")
	l.Debugf("not %s", "shown")
	l.Info("an ", "info")
	l.Warnf("a %s", "warning")
	l.Error("an error")
	l.Errorf("error %d", 2)
	lines := jsonLines(t, buf.String())
	want := []struct{ level, msg string }{{"info", "an info"}, {"warn", "a warning"}, {"warn", "an error"}, {"warn", "error 2"}}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, w := range want {
		if lines[i]["level"] != w.level || lines[i]["message"] != w.msg || lines[i]["component"] != "nacos-sdk" {
			t.Errorf("line %d = %v, want level %s message %q component nacos-sdk", i, lines[i], w.level, w.msg)
		}
	}

	buf = syncbuf.Buffer{}
	quiet := newSDKLogger(zerolog.New(&buf), "") // default: warnings and up
	quiet.Info("not shown")
	quiet.Warn("shown")
	if lines := jsonLines(t, buf.String()); len(lines) != 1 || lines[0]["message"] != "shown" {
		t.Errorf("default level: %v", lines)
	}
}

// TestSDKLinesGoThroughZerolog: the real SDK, connecting to the
// in-process Nacos, writes its own lines (at info level here) as JSON
// lines of the configured logger, and nothing of its own format there.
func TestSDKLinesGoThroughZerolog(t *testing.T) {
	srv := startFakeNacos(t)
	var buf syncbuf.Buffer
	n, err := New(Config{Servers: []string{srv.ClientAddr()}, Group: testGroup, Dir: sdkDir(t),
		SDKLogLevel: "info", Logger: zerolog.New(&buf).With().Str("node", "n1").Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	await.True(t, 10*time.Second, "connected", func() bool { return n.Ready(context.Background()) == nil })
	await.True(t, 10*time.Second, "an SDK line", func() bool { return strings.Contains(buf.String(), `"component":"nacos-sdk"`) })
	_ = n.Close()
	for _, m := range jsonLines(t, buf.String()) {
		if m["node"] != "n1" || m["component"] == nil || m["message"] == nil {
			t.Errorf("line without the logger's fields: %v", m)
		}
	}
}
