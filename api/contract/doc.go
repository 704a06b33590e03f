// Package contract checks HTTP exchanges with pushd's server API against
// its OpenAPI 3.1 contract (package openapi, api/openapi.yaml), with
// kin-openapi's request and response validators, so that the tests that
// produce those exchanges keep the contract and the server in step. It is
// meant for tests: pushd itself does not import it.
package contract
