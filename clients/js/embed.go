// Package sseclient embeds pushd's browser client for the server: sse.js,
// the ES module that is also the npm package @pushd/client (package.json
// beside it), and its TypeScript declarations sse.d.ts. pkg/web serves
// both at every app's base path, the script as a module and, with the
// final export statement removed, as a classic script.
package sseclient

import "embed"

// FS holds sse.js and sse.d.ts as the npm package ships them.
//
//go:embed sse.js sse.d.ts
var FS embed.FS
