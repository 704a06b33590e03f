// Package testredis runs private redis-server processes (servers and
// sentinels) for pushd's tests: one per test, on its own port and data
// directory, stopped at the end of the test. Tests of several packages run
// at once, so a server is only used once it has proved to be the process
// this package started.
package testredis
