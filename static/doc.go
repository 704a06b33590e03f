// Package static holds the demo page pushd serves at / (index.html). The
// browser client it imports lives in clients/js (package sseclient).
package static
