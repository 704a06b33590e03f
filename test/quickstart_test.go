package test

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestReadmeQuickStart runs the README's "Quick start with curl" block as
// written, against the embedded demo on a free port: the stream it opens
// must receive the sends, and every answer must match the one the README
// shows after it ("# → …", where "…" stands for the rest of a value).
func TestReadmeQuickStart(t *testing.T) {
	requireTool(t, "curl", "the README's quick start")
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	block := quickStartBlock(t, string(readme))
	n := startPushd(t, "")
	host := strings.TrimPrefix(n.url, "http://")

	var stream *bufio.Reader
	var lastOut string
	commands := 0
	for _, line := range joinContinuations(block) {
		line = strings.TrimSpace(line)
		if want, ok := strings.CutPrefix(line, "# → "); ok {
			if !expectedAnswer(want).MatchString(strings.TrimSpace(lastOut)) {
				t.Errorf("answer %q, the README shows %q", lastOut, want)
			}
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.ReplaceAll(line, "localhost:8080", host)
		commands++
		if strings.HasPrefix(line, "curl -N") {
			cmd := exec.Command("bash", "-c", line)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			stream = bufio.NewReader(out)
			if ev := nextEvent(t, stream); ev["event"] != "connect-finish" {
				t.Fatalf("the stream starts with %v, want connect-finish", ev)
			}
			continue
		}
		out, err := exec.Command("bash", "-c", line).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		lastOut = string(out)
	}
	if stream == nil || commands < 4 {
		t.Fatalf("the quick start block has %d commands and no stream? %q", commands, block)
	}
	for _, want := range []map[string]string{
		{"event": "bell", "data": `{"count":3}`},
		{"event": "news", "data": "multi\nline text"},
		{"event": "bell", "data": "1"},
	} {
		ev := nextEvent(t, stream)
		if ev["event"] != want["event"] || ev["data"] != want["data"] {
			t.Errorf("stream event %q, want %q", ev, want)
		}
	}
}

// quickStartBlock is the first sh block after the quick start heading.
func quickStartBlock(t *testing.T, readme string) string {
	t.Helper()
	_, rest, ok := strings.Cut(readme, "## Quick start with curl")
	if !ok {
		t.Fatal("README has no quick start section")
	}
	_, rest, ok = strings.Cut(rest, "```sh\n")
	if !ok {
		t.Fatal("the quick start has no sh block")
	}
	block, _, _ := strings.Cut(rest, "```")
	return block
}

// joinContinuations joins lines ending in a backslash with the next.
func joinContinuations(block string) []string {
	return strings.Split(strings.ReplaceAll(block, "\\\n", " "), "\n")
}

// expectedAnswer turns an answer shown in the README into a pattern: a
// quoted value ending in "…" matches any value.
func expectedAnswer(shown string) *regexp.Regexp {
	pattern := regexp.QuoteMeta(shown)
	pattern = regexp.MustCompile(`"[^"]*…"`).ReplaceAllString(pattern, `"[^"]*"`)
	return regexp.MustCompile("^" + pattern + "$")
}

// nextEvent reads one SSE event (skipping comments) into its fields; data
// lines are joined with "\n".
func nextEvent(t *testing.T, r *bufio.Reader) map[string]string {
	t.Helper()
	got := make(chan map[string]string, 1)
	go func() {
		ev := map[string]string{}
		var data []string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				got <- ev
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "" && len(ev) == 1 && ev["id"] != "" && data == nil:
				ev = map[string]string{} // a bare id, which a browser does not dispatch either
			case line == "" && len(ev)+len(data) > 0:
				if data != nil {
					ev["data"] = strings.Join(data, "\n")
				}
				got <- ev
				return
			case line == "" || strings.HasPrefix(line, ":"):
			case strings.HasPrefix(line, "data:"):
				data = append(data, strings.TrimPrefix(line, "data:"))
			default:
				k, v, _ := strings.Cut(line, ":")
				ev[k] = v
			}
		}
	}()
	select {
	case ev := <-got:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
	}
	return nil
}
