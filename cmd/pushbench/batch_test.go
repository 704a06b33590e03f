package main

import "testing"

// TestSmallBatchRunAgainstPushd sends every phase's 30 messages in
// batches of 8 (the last one of 6): each item's delivery and the API's
// delivered count are checked as for single sends.
func TestSmallBatchRunAgainstPushd(t *testing.T) {
	rep := smallRun(t, func(c *Config) { c.Batch = 8 })
	checkPhases(t, rep, modeBroadcast, modeUser, modeTenant)
}
