// Command pushd is the pushd daemon: it keeps Server-Sent-Events streams
// open to browsers and pushes events to them for backends in any
// language. Without --config it runs the embedded demo on :8080.
package main
