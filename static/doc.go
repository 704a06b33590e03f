// Package static holds the files pushd serves to browsers: the sse.js
// client, its TypeScript declarations and the demo page.
package static
