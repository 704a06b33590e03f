// Package openapi holds the OpenAPI 3.1 contract of pushd's server API
// (openapi.yaml beside this file): every endpoint under /api/v1/apps/{app}/,
// its parameters, answers and errors, with examples. Spec is the document
// itself, embedded in the binary; Handler serves it, as pushd does at
// /api/v1/openapi.yaml. Package contract checks HTTP exchanges against it.
package openapi
