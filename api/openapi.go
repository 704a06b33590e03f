package openapi

import (
	_ "embed"
	"net/http"
)

// Path is where pushd serves the contract.
const Path = "/api/v1/openapi.yaml"

// Spec is the contract, api/openapi.yaml, as YAML.
//
//go:embed openapi.yaml
var Spec []byte

// Handler serves Spec as application/yaml, without a key: the contract is
// public, and code generators fetch it as it is.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(Spec)
	})
}
