// Command pushd is the pushd daemon: it keeps Server-Sent-Events streams
// open to browsers and pushes events to them for backends in any
// language. Without --config it runs the embedded demo on 127.0.0.1:8080.
//
// The files, by concern: main.go and cli.go the command line; config.go
// the configuration's types, load.go reading it (or the embedded demo),
// decode.go the YAML decoder, env.go the PUSHD_* variables, validate.go
// the defaults and checks; engine.go the parts apps share (QoS store,
// cluster transport, readiness); app.go one app (hub, authentication,
// upstream, browser handler, presence hooks); routes.go the HTTP surface;
// metrics.go the Prometheus collectors; logs.go the logger; tls.go HTTPS;
// run.go serving and the ordered shutdown; gc.go the GC tuner.
package main
