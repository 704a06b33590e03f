package static

import "embed"

// FS holds sse.js, its TypeScript declarations sse.d.ts (served beside
// the script at every app's base path) and the demo page index.html.
//
//go:embed sse.js sse.d.ts index.html
var FS embed.FS
