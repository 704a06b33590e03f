package test

import (
	"net/http"
	"os"
	"strings"
	"testing"
)

// jsonBlocks returns the json blocks of the section under heading in a
// Markdown file (up to the next heading of any level).
func jsonBlocks(t *testing.T, file, heading string) []string {
	t.Helper()
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(text), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("%s has no %q", file, heading)
	}
	if i := strings.Index(section, "\n#"); i >= 0 {
		section = section[:i]
	}
	var blocks []string
	for {
		_, rest, ok := strings.Cut(section, "```json\n")
		if !ok {
			return blocks
		}
		block, after, _ := strings.Cut(rest, "```")
		blocks = append(blocks, block)
		section = after
	}
}

// TestDocsChannelBodies sends the request bodies of docs/api.md's
// Channels section to a running pushd's subscribe and unsubscribe: each
// is accepted and moves the one connection of user 42 in and out.
func TestDocsChannelBodies(t *testing.T) {
	blocks := jsonBlocks(t, "../docs/api.md", "### Channels")
	if len(blocks) == 0 {
		t.Fatal("docs/api.md's Channels section has no json block")
	}
	n := startPushd(t, "")
	s := openStream(t, n.url+"/sse/demo/connect?userId=42")
	s.frame() // connect-finish
	for _, body := range blocks {
		for _, op := range []string{"subscribe", "unsubscribe"} {
			code, answer := do(t, http.MethodPost, n.url+"/api/v1/apps/demo/"+op, "application/json", strings.NewReader(body),
				"Authorization", "Bearer demo-key")
			if code != http.StatusOK || answer != `{"changed":1}`+"\n" {
				t.Errorf("%s %s: %d %s, want 200 {\"changed\":1}", op, body, code, answer)
			}
		}
	}
}
