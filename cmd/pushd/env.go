package main

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// applyEnv overrides cfg from PUSHD_* variables: every field by its path
// (PUSHD_QOS_TTL, PUSHD_APPS_0_AUTH_MODE; lists comma-separated), plus
// the shortcuts PUSHD_API_KEY (API keys of the first app) and
// PUSHD_REDIS_URL (both Redis URLs, unless set separately).
func applyEnv(cfg *Config, env []string) error {
	vars := make(map[string]string)
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "PUSHD_") {
			vars[k] = v
		}
	}
	if v, ok := vars["PUSHD_REDIS_URL"]; ok {
		cfg.QoS.RedisURL, cfg.Cluster.RedisURL, cfg.History.RedisURL = v, v, v
	}
	if v, ok := vars["PUSHD_API_KEY"]; ok && len(cfg.Apps) > 0 {
		cfg.Apps[0].APIKeys = splitList(v)
	}
	return walkEnv(reflect.ValueOf(cfg).Elem(), "PUSHD", vars)
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

var durationType = reflect.TypeFor[Duration]()

func walkEnv(v reflect.Value, name string, vars map[string]string) error {
	switch {
	case v.Type() == durationType:
		if s, ok := vars[name]; ok {
			return wrapEnv(name, v.Addr().Interface().(*Duration).set(s))
		}
	case v.Kind() == reflect.Struct:
		for i := range v.NumField() {
			tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			if err := walkEnv(v.Field(i), name+"_"+strings.ToUpper(tag), vars); err != nil {
				return err
			}
		}
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		for k := range vars {
			if i, ok := envListIndex(k, name); ok && i >= v.Len() {
				return fmt.Errorf("config: env %s: there is no item %d, the list has %d", k, i, v.Len())
			}
		}
		for i := range v.Len() {
			if err := walkEnv(v.Index(i), name+"_"+strconv.Itoa(i), vars); err != nil {
				return err
			}
		}
	default:
		s, ok := vars[name]
		if !ok {
			return nil
		}
		return wrapEnv(name, setScalar(v, s))
	}
	return nil
}

func wrapEnv(name string, err error) error {
	if err != nil {
		return fmt.Errorf("config: env %s: %w", name, err)
	}
	return nil
}

func setScalar(v reflect.Value, s string) error {
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("not a boolean: %q", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer: %q", s)
		}
		v.SetInt(n)
	case reflect.Slice:
		v.Set(reflect.ValueOf(splitList(s)))
	default:
		return fmt.Errorf("cannot set a %s from the environment", v.Kind())
	}
	return nil
}

// envShortcuts are the PUSHD_ variables that are not a key's path.
var envShortcuts = []string{"PUSHD_API_KEY", "PUSHD_REDIS_URL"}

// envNames lists the variable of every key of t under name, an item of a
// list of structs as name_N.
func envNames(t reflect.Type, name string, out *[]string) {
	switch {
	case t == durationType:
		*out = append(*out, name)
	case t.Kind() == reflect.Struct:
		for i := range t.NumField() {
			tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			if tag != "" && tag != "-" {
				envNames(t.Field(i).Type, name+"_"+strings.ToUpper(tag), out)
			}
		}
	case t.Kind() == reflect.Pointer:
		envNames(t.Elem(), name, out)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		envNames(t.Elem(), name+"_N", out)
	default:
		*out = append(*out, name)
	}
}

var envIndex = regexp.MustCompile(`_[0-9]+(_|$)`)

// unknownEnv returns a warning for every PUSHD_ variable of env that
// names no key (a typo is otherwise silently ignored), with the nearest
// valid name when one is close.
func unknownEnv(env []string) []string {
	var known []string
	envNames(reflect.TypeFor[Config](), "PUSHD", &known)
	known = append(known, envShortcuts...)
	var warnings []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "PUSHD_") {
			continue
		}
		generic := envIndex.ReplaceAllString(k, "_N$1")
		if slices.Contains(known, generic) {
			continue
		}
		msg := fmt.Sprintf("environment variable %s names no configuration key, it is ignored", k)
		best, bestDist := "", len(generic)/3+1
		for _, name := range known {
			if d := editDistance(generic, name); d < bestDist {
				best, bestDist = name, d
			}
		}
		if best != "" {
			// Put the variable's own list index back into the suggestion.
			for _, m := range envIndex.FindAllString(k, -1) {
				best = strings.Replace(best, "_N", strings.TrimSuffix(m, "_"), 1)
			}
			msg += fmt.Sprintf(" (did you mean %s?)", best)
		}
		warnings = append(warnings, msg)
	}
	return warnings
}
