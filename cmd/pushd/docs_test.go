package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestDocumentedConfigsLoad loads every yaml block of the README and the
// docs through the config loader, so that no example a user copies is
// invalid. Blocks of other formats (Kubernetes manifests) are recognised
// by their top-level keys, which are not pushd's, and skipped.
func TestDocumentedConfigsLoad(t *testing.T) {
	files := []string{"../../README.md", "../../examples/README.md"}
	docs, _ := filepath.Glob("../../docs/*.md")
	files = append(files, docs...)
	loaded := 0
	for _, file := range files {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, block := range fencedBlocks(string(text), "yaml") {
			name := filepath.Base(file) + " yaml block " + strconv.Itoa(i+1)
			if !isPushdConfig(block) {
				t.Logf("%s: not a pushd configuration, skipped", name)
				continue
			}
			f := filepath.Join(t.TempDir(), "block.yaml")
			if err := os.WriteFile(f, []byte(block), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := loadConfig(f, nil); err != nil {
				t.Errorf("%s does not load:\n%v\n%s", name, err, block)
			}
			loaded++
		}
	}
	if loaded == 0 {
		t.Fatal("no documented configuration found")
	}
}

// fencedBlocks returns the contents of the ```lang blocks of a Markdown text.
func fencedBlocks(text, lang string) []string {
	var blocks []string
	var cur *strings.Builder
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && trimmed == "```"+lang:
			cur = &strings.Builder{}
		case cur != nil && trimmed == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	return blocks
}

// isPushdConfig reports whether every top-level key of a YAML text is a
// key of pushd's configuration.
func isPushdConfig(block string) bool {
	var top map[string]any
	if yaml.Unmarshal([]byte(block), &top) != nil || len(top) == 0 {
		return true // let the loader say what is wrong
	}
	for k := range top {
		if _, ok := fieldByTag(reflect.TypeFor[Config](), k); !ok {
			return false
		}
	}
	return true
}
