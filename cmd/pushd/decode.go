package main

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// problems collects configuration errors, each starting with the key path
// as the user wrote it ("apps[0].heartbeat").
type problems []string

func (p *problems) addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// err joins the problems, one per line, or returns nil.
func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	msgs := make([]error, len(p))
	for i, s := range p {
		msgs[i] = errors.New("config: " + s)
	}
	return errors.Join(msgs...)
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// decodeNode decodes n into v (addressable) by walking the configuration
// types itself, so that every problem — unknown keys, with the nearest
// valid one suggested, and values of the wrong type — is reported with its
// key path, and all of them at once.
func decodeNode(n *yaml.Node, v reflect.Value, path string, probs *problems) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			decodeNode(c, v, path, probs)
		}
		return
	}
	if n.Tag == "!!null" {
		return
	}
	t := v.Type()
	switch {
	case reflect.PointerTo(t).Implements(unmarshalerType):
		if err := n.Decode(v.Addr().Interface()); err != nil {
			probs.addf("%s: %s", path, yamlMessage(err))
		}
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			probs.addf("%s: must be a mapping of keys (line %d)", orTop(path), n.Line)
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, value := n.Content[i].Value, n.Content[i+1]
			field, ok := fieldByTag(t, key)
			if !ok {
				msg := fmt.Sprintf("%s: unknown key (line %d)", join(path, key), n.Content[i].Line)
				if near := nearestKey(t, key); near != "" {
					msg += fmt.Sprintf(`; did you mean %q?`, near)
				}
				*probs = append(*probs, msg)
				continue
			}
			decodeNode(value, v.FieldByIndex(field.Index), join(path, key), probs)
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		if n.Kind != yaml.SequenceNode {
			probs.addf("%s: must be a list (line %d)", path, n.Line)
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			decodeNode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i), probs)
		}
		v.Set(s)
	default:
		if err := n.Decode(v.Addr().Interface()); err != nil {
			probs.addf("%s: %q is not %s (line %d)", path, n.Value, kindName(t), n.Line)
		}
	}
}

func orTop(path string) string { return cmp.Or(path, "the file") }

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlMessage strips yaml's "unmarshal errors: line N:" decoration.
func yamlMessage(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return strings.Join(te.Errors, "; ")
	}
	return err.Error()
}

// kindName says what a value of t looks like, for error messages.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list of " + strings.TrimPrefix(kindName(t.Elem()), "a ") + "s"
	case reflect.Map:
		return "a mapping"
	}
	return "a " + t.Kind().String()
}

// fieldByTag finds the field of struct t whose yaml name is key.
func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for _, f := range reflect.VisibleFields(t) {
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name != "" && name != "-" && name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// nearestKey is the yaml name of t closest to key, if it is close enough
// to be a typo.
func nearestKey(t reflect.Type, key string) string {
	best, bestDist := "", len(key)/2+2
	for _, f := range reflect.VisibleFields(t) {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		if d := editDistance(strings.ToLower(key), name); d < bestDist {
			best, bestDist = name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// envListIndex returns, for a variable that names an item of a list of
// structs (PUSHD_APPS_3_PATH), the list's env name and the index.
func envListIndex(name, prefix string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix+"_")
	if !ok {
		return 0, false
	}
	digits, _, _ := strings.Cut(rest, "_")
	i, err := strconv.Atoi(digits)
	return i, err == nil
}
