// Command refserver is a minimal SSE broadcast server used only as a yardstick
// for pushd's load figures: the budgets were set against such
// designs, and machines here differ by tens of percent from day to day, so a
// budget is judged against these references measured in the same run.
//
// It speaks just enough of pushd's protocol for pushbench: GET /healthz,
// GET {base}/connect (answers connect-finish with a connection id) and
// POST /api/v1/apps/{app}/send with {"to":{"all":true}} or
// {"to":{"userIds":[…]}} (the epoll design also {"to":{"tenantIds":[…]}}),
// answering {"delivered": n}. There is no
// authentication, no telemetry and no QoS. It listens on $PUSHD_LISTEN so that
// `pushbench -spawn` can start it like pushd:
//
//	pushbench -spawn refserver -spawn-args "-design goroutine" -mode broadcast …
//	pushbench -spawn refserver -spawn-args "-design pool" -mode broadcast …
//	pushbench -spawn ./pushd -floor refserver …   (epoll design, same phases first)
//
// Designs:
//   - goroutine: plain net/http; each connection's handler goroutine waits on
//     its own queue and writes and flushes every frame.
//   - pool: the connection is hijacked and the response head written raw;
//     a broadcast appends the frame to each connection's pending bytes and a
//     fixed pool of writer goroutines writes them with a write deadline.
package main
