package redishistory_test

import (
	"testing"

	"github.com/pushd/pushd/internal/testredis"
	"github.com/pushd/pushd/pkg/history"
	"github.com/pushd/pushd/pkg/history/historytest"
)

// TestConformanceCluster runs the suite on a real Redis Cluster: every
// script of the store touches the two keys of one stream, hash-tagged to
// one slot, so it runs on whichever master serves that slot.
func TestConformanceCluster(t *testing.T) {
	c := testredis.StartCluster(t).Client()
	historytest.Run(t, func(t *testing.T) history.Store { return newStore(t, c) })
}
