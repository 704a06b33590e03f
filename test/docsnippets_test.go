package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docBlocks returns every fenced block of lang (```lang) in a Markdown
// file, with the line each starts on.
func docBlocks(t *testing.T, file, lang string) (blocks []string, lines []int) {
	t.Helper()
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var cur *strings.Builder
	for i, line := range strings.Split(string(text), "\n") {
		switch {
		case cur == nil && line == "```"+lang:
			cur = &strings.Builder{}
			lines = append(lines, i+2)
		case cur != nil && line == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	if cur != nil {
		t.Fatalf("%s: a ```%s block is not closed", file, lang)
	}
	return blocks, lines
}

// TestDocsJSBlocksParse: every js block of the README and the browser
// guides is JavaScript as written — node parses it as a module (top-level
// await allowed); names the page defines (Sse, feed, formData's form) are
// not resolved. The README's browser block also runs in chromium
// (test/browser/connect-error.test.js).
func TestDocsJSBlocksParse(t *testing.T) {
	requireTool(t, "node", "the documentation's JavaScript blocks")
	dir := t.TempDir()
	for _, file := range []string{"../README.md", "../docs/client.md", "../docs/migration.md"} {
		blocks, lines := docBlocks(t, file, "js")
		if len(blocks) == 0 {
			t.Errorf("%s has no js block", file)
		}
		for i, b := range blocks {
			f := filepath.Join(dir, fmt.Sprintf("%s-%d.mjs", filepath.Base(file), lines[i]))
			if err := os.WriteFile(f, []byte(b), 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("node", "--check", f).CombinedOutput(); err != nil {
				t.Errorf("%s:%d: the js block does not parse: %v\n%s\n%s", file, lines[i], err, out, b)
			}
		}
	}
}

// goSnippetPrelude declares what the Go blocks of the docs take from
// their surroundings (a context, a key, the caller's values).
const goSnippetPrelude = `package main

import (
	"context"
	"net/http"
	"time"

	"github.com/pushd/pushd/pkg/auth"
	"github.com/pushd/pushd/pkg/client"
	"github.com/pushd/pushd/pkg/hub"
	redistransport "github.com/pushd/pushd/pkg/transport/redis"
	"github.com/pushd/pushd/pkg/web"
)

var (
	ctx       context.Context
	key       string
	mySession func(*http.Request) (hub.User, error)
	router    *http.ServeMux
	bell, invoice any
	ids       []string
	ev        hub.Event
	_         = time.Hour
)

func main() {}
`

// ignoredGoErrors are what a fragment may leave: a result it does not go
// on to use, an import another block needs.
var ignoredGoErrors = regexp.MustCompile(`declared and not used|imported and not used|"[^"]+" imported as \w+ and not used`)

// TestDocsGoBlocksCompile: the Go blocks of the API and cluster guides
// compile against the packages of this module, each as the body of a
// function, with the names of its surroundings declared (goSnippetPrelude)
// and a placeholder "{ … }" read as an empty body, "(…)" as nil. A result
// the fragment does not use is no error.
func TestDocsGoBlocksCompile(t *testing.T) {
	requireTool(t, "go", "the documentation's Go blocks")
	// Inside this module (a directory go ./... skips), so that the
	// imports resolve to the packages of this checkout.
	dir, err := os.MkdirTemp(".", "_docsnippets")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	src := &strings.Builder{}
	src.WriteString(goSnippetPrelude)
	where := map[int]string{} // line of the generated file → doc file:line
	count := 0
	for _, file := range []string{"../docs/api.md", "../docs/cluster.md"} {
		blocks, lines := docBlocks(t, file, "go")
		if len(blocks) == 0 {
			t.Errorf("%s has no go block", file)
		}
		for i, b := range blocks {
			b = strings.NewReplacer("{ … }", "{}", "(…)", "(nil)").Replace(b)
			fmt.Fprintf(src, "\nfunc snippet%d() {\n", count)
			for j, line := range strings.Split(strings.TrimSuffix(b, "\n"), "\n") {
				where[strings.Count(src.String(), "\n")+1] = fmt.Sprintf("%s:%d", file, lines[i]+j)
				src.WriteString(line + "\n")
			}
			src.WriteString("}\n")
			count++
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "snippets.go"), []byte(src.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-gcflags=-e", "-o", os.DevNull, "./"+dir)
	out, _ := cmd.CombinedOutput()
	lineRef := regexp.MustCompile(`snippets\.go:(\d+):`)
	for _, line := range strings.Split(string(out), "\n") {
		if line == "" || strings.HasPrefix(line, "#") || ignoredGoErrors.MatchString(line) {
			continue
		}
		doc := "?"
		if m := lineRef.FindStringSubmatch(line); m != nil {
			var n int
			fmt.Sscan(m[1], &n)
			doc = where[n]
		}
		t.Errorf("%s: %s", doc, line)
	}
	if t.Failed() {
		t.Logf("generated file:\n%s", src)
	}
}
