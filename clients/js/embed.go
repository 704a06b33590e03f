package sseclient

import "embed"

// FS holds sse.js and sse.d.ts, the files the npm package ships.
//
//go:embed sse.js sse.d.ts
var FS embed.FS
