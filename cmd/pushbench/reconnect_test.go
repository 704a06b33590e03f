package main

import (
	"testing"
	"time"

	"github.com/pushd/pushd/internal/testredis"
)

// The mass-reconnect scenario, small: 200 connections on node 1 of three
// (50 in the storm, whose refusals wait a second or two each),
// 5 QoS messages per user, node 1 killed; every connection is back on
// nodes 2 and 3 with its whole backlog, once. With max_connecting 5 and
// no waiting on the nodes and the clients' backoff shrunk to a storm,
// some connects are refused with 503 and come back after their
// Retry-After, still without loss.
func TestReconnectScenario(t *testing.T) {
	redis := testredis.Binary(t)
	for _, storm := range []bool{false, true} {
		n := map[bool]int{false: 200, true: 50}[storm]
		t.Run(map[bool]string{false: "spread", true: "storm-admission"}[storm], func(t *testing.T) {
			rep := smallRun(t, func(c *Config) {
				c.Reconnect = true
				c.Conns, c.Users = n, n
				c.SpawnNodes = 3
				c.SpawnRedis = redis
				c.ReconnectBase = 200 * time.Millisecond
				if storm {
					c.ReconnectBase = time.Millisecond
					c.SpawnEnv = []string{"PUSHD_HTTP_ADMISSION_MAX_CONNECTING=5", "PUSHD_HTTP_ADMISSION_MAX_WAITING=-1"}
				}
			})
			rr := rep.Reconnect
			if rr == nil {
				t.Fatal("no reconnect report")
			}
			if !rep.OK() {
				t.Fatalf("not OK: %v", rep.Problems())
			}
			if rr.Back != int64(n) || rr.Complete != int64(n) || rr.Replayed != int64(5*n) || rr.Lost != 0 || rr.Duplicated != 0 {
				t.Fatalf("back %d complete %d replayed %d lost %d duplicated %d", rr.Back, rr.Complete, rr.Replayed, rr.Lost, rr.Duplicated)
			}
			if rr.PerNode["node2"]+rr.PerNode["node3"] != int64(n) || rr.PerNode["node2"] == 0 || rr.PerNode["node3"] == 0 {
				t.Fatalf("per node %v, want %d spread over node2 and node3", rr.PerNode, n)
			}
			if storm && rr.Refused == 0 {
				t.Fatal("storm against max_connecting 5: no connect refused")
			}
			if len(rr.Timeline) < 2 {
				t.Fatalf("timeline of %d readings", len(rr.Timeline))
			}
			last := rr.Timeline[len(rr.Timeline)-1]
			if _, ok := last.CPU["node1"]; ok {
				t.Errorf("node 1 read after the kill: %+v", last)
			}
			if _, ok := last.RSSMiB["node2"]; !ok {
				t.Errorf("node 2 not read: %+v", last)
			}
		})
	}
}
