package static

import "embed"

// FS holds the demo page index.html.
//
//go:embed index.html
var FS embed.FS
