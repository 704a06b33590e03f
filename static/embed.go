package static

import "embed"

// FS holds sse.js and the demo page. (sse.d.ts lies beside them for front
// ends that bundle the client; the server does not serve it.)
//
//go:embed sse.js index.html
var FS embed.FS
