// Package testredis runs private redis-server processes (servers,
// sentinels, and Redis Clusters of three masters and three replicas) for
// pushd's tests: each on its own port and data directory, stopped at the
// end of the test. Tests of several packages run at once, so a server is
// only used once it has proved to be the process this package started.
//
// Where redis-server is not installed, Start, StartCluster, Require and
// Binary skip the test saying what it needs (or fail it when the
// environment variable CI is set), and StartAny gives a test that can run
// on a stand-in a miniredis instead: see docs/testing.md, "Without
// redis-server".
package testredis
