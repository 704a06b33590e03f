package main

import "testing"

// Channel sends on a generated configuration with history: connections
// in 3 channels of each prefix, 30 sends to the "h." channels (history
// kept) and 30 to the "nh." ones (none), each reaching the 30
// connections in its channel.
func TestChannelModesWithHistory(t *testing.T) {
	rep := smallRun(t, func(c *Config) {
		c.History, c.Channels, c.ConnChannels, c.ChannelPrefixes = historyMemory, 30, 3, []string{"h.", noHistoryPrefix}
		c.Modes = []string{"channel:h.", "channel:" + noHistoryPrefix}
	})
	if !rep.OK() {
		t.Fatalf("not OK: %v", rep.Problems())
	}
	for _, p := range rep.Phases {
		if p.Sent != 30 || p.Expected != 900 || p.Delivered != 900 || p.APIDelivered != 900 {
			t.Errorf("phase %s: sent %d, expected %d, delivered %d, API delivered %d; want 30 sends to 30 connections each",
				p.Mode, p.Sent, p.Expected, p.Delivered, p.APIDelivered)
		}
	}
}

func TestConnChannels(t *testing.T) {
	c := Config{Channels: 5, ConnChannels: 2, ChannelPrefixes: []string{"a.", "b."}}
	got := c.connChannels(4)
	want := []string{"a.4", "a.0", "b.4", "b.0"}
	if len(got) != len(want) {
		t.Fatalf("connChannels(4) = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("connChannels(4) = %v, want %v", got, want)
		}
	}
	if !channelKeyMatches("c:b.0", got) || channelKeyMatches("c:b.1", got) || channelKeyMatches("u:a.4", got) {
		t.Error("channelKeyMatches")
	}
}
