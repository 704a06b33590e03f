// Package static holds the files pushd serves to browsers: the sse.js
// client, its TypeScript declarations and the demo page.
package static

import "embed"

// FS holds sse.js, sse.d.ts and the demo page.
//
//go:embed sse.js index.html
var FS embed.FS
