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

// TestDocsTwoNodes runs the cluster guide's two-node block as written, as
// a new user would paste it: genconfig, two nodes on the redis transport,
// gentoken, a stream on one node and a send through the other. Only the
// ports are changed to free ones, and the nodes use a private Redis
// (PUSHD_REDIS_URL, which overrides the file).
func TestDocsTwoNodes(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed (scripts/test.sh installs it)")
	}
	block := docBlock(t, "../docs/cluster.md", "### Two nodes on one machine")
	for _, port := range []string{"8081", "8082"} {
		block = strings.ReplaceAll(block, "127.0.0.1:"+port, fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	}
	rd := startRedis(t, false)
	dir := t.TempDir() // the binary in the current directory, as the guide says
	if err := os.Symlink(pushdBin, filepath.Join(dir, "pushd")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-e", "-c", block+"\nwait\n")
	cmd.Dir = dir
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PUSHD_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "PUSHD_REDIS_URL="+rd.URL())
	out := &lockedBuffer{}
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
	waitFor(t, 30*time.Second, func() error {
		s := out.String()
		if !strings.Contains(s, "event:bell") || !strings.Contains(s, "data:from b") {
			return fmt.Errorf("the stream on node a has not received the send")
		}
		if !strings.Contains(s, `"stored":true`) {
			return fmt.Errorf("the send's answer is not out")
		}
		return nil
	})
}
