package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pushd/pushd/internal/syncbuf"
)

// docBlock returns the first sh block after heading in a Markdown file.
func docBlock(t *testing.T, file, heading string) string {
	t.Helper()
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(text), heading+"\n")
	if !ok {
		t.Fatalf("%s has no %q", file, heading)
	}
	_, rest, ok = strings.Cut(rest, "```sh\n")
	if !ok {
		t.Fatalf("%s: no sh block after %q", file, heading)
	}
	block, _, _ := strings.Cut(rest, "```")
	return block
}

// runDocBlock runs a documentation block with bash -e in a fresh directory
// holding the pushd binary as ./pushd, with the ports replaced by free ones
// and env added, until the output satisfies done. The block's background
// processes are killed at the end.
func runDocBlock(t *testing.T, block string, ports []string, env []string, done func(out string) error) {
	t.Helper()
	requireTool(t, "curl", "the documentation's shell blocks")
	for _, port := range ports {
		block = strings.ReplaceAll(block, "127.0.0.1:"+port, fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	}
	dir := t.TempDir()
	if err := os.Symlink(pushdBin, filepath.Join(dir, "pushd")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-e", "-c", block+"\nwait\n")
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PUSHD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("the block printed:\n%s", out.String())
		}
	})
	waitFor(t, 30*time.Second, func() error { return done(out.String()) })
}

// TestReadmeJWTApp runs the README's five lines: genconfig, checkconfig, a
// server on the generated config, gentoken, and a stream with the token.
func TestReadmeJWTApp(t *testing.T) {
	block := docBlock(t, "../README.md", "A JWT-protected app in five lines (`test/docs_test.go` runs them):")
	runDocBlock(t, block, []string{"8090"}, nil, func(out string) error {
		if !strings.Contains(out, "ok (1 apps)") {
			return fmt.Errorf("checkconfig has not passed")
		}
		if !strings.Contains(out, "event:connect-finish") {
			return fmt.Errorf("the stream with the generated token has no connect-finish")
		}
		return nil
	})
}

// TestDocsTwoNodes runs the cluster guide's two-node block as written, as
// a new user would paste it: genconfig, two nodes on the redis transport,
// gentoken, a stream on one node and a send through the other. Only the
// ports are changed to free ones, and the nodes use a private Redis
// (PUSHD_REDIS_URL, which overrides the file).
func TestDocsTwoNodes(t *testing.T) {
	block := docBlock(t, "../docs/cluster.md", "### Two nodes on one machine")
	rd := startRedis(t, false)
	runDocBlock(t, block, []string{"8081", "8082"}, []string{"PUSHD_REDIS_URL=" + rd.URL()}, func(s string) error {
		if !strings.Contains(s, "event:bell") || !strings.Contains(s, "data:from b") {
			return fmt.Errorf("the stream on node a has not received the send")
		}
		if !strings.Contains(s, `"stored":true`) {
			return fmt.Errorf("the send's answer is not out")
		}
		return nil
	})
}

// TestDocsComposeCommandsDoNotWait: no documented "docker compose … up"
// uses --wait, which can exit 1 when the one-shot certs service finishes
// (docker/compose#10596); the docs wait for readiness through nginx.
func TestDocsComposeCommandsDoNotWait(t *testing.T) {
	found := 0
	for _, file := range []string{"../README.md", "../docs/cluster.md", "../docker-compose.yml"} {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(text), "\n") {
			if !strings.Contains(line, "docker compose") || !strings.Contains(line, " up") {
				continue
			}
			found++
			// The command without a trailing comment (the compose file's
			// commands are themselves in comments).
			cmd, _, _ := strings.Cut(strings.TrimLeft(line, "# "), " #")
			if strings.Contains(cmd, "--wait") {
				t.Errorf("%s:%d: %q uses --wait", file, i+1, line)
			}
		}
	}
	if found < 3 {
		t.Errorf("only %d docker compose up commands found in the docs", found)
	}
}
