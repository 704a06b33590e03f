//go:build !race

package registry

// sdkReconnectRaces is set in race builds, where making the SDK reconnect
// fails the test (see nacos_restart_test.go) and its discovery races (see
// TestConformance).
const sdkReconnectRaces = false
