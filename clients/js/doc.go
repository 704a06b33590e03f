// Package sseclient embeds pushd's browser client for the server: sse.js,
// the ES module that is also the npm package @pushd/client (package.json
// beside it), and its TypeScript declarations sse.d.ts. pkg/web serves
// both at every app's base path, the script as a module and, up to its
// final export statement, as a classic script.
package sseclient
