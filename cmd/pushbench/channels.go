package main

import (
	"errors"
	"strconv"
	"strings"
)

// defaultChannelPrefix starts channel names when no prefix is given.
const defaultChannelPrefix = "ch."

// setChannelDefaults checks and completes the channel settings.
func (c *Config) setChannelDefaults() error {
	if c.Channels < 0 || c.ConnChannels < 0 {
		return errors.New("channels and conn-channels must not be negative")
	}
	if c.Channels == 0 {
		return nil
	}
	if c.ConnChannels == 0 {
		c.ConnChannels = 1
	}
	if c.ConnChannels > c.Channels {
		return errors.New("conn-channels exceeds channels")
	}
	if len(c.ChannelPrefixes) == 0 {
		c.ChannelPrefixes = []string{defaultChannelPrefix}
	}
	return nil
}

// connChannels lists the channels connection i joins: per prefix,
// ConnChannels consecutive ones from i%Channels.
func (c *Config) connChannels(i int) []string {
	if c.Channels == 0 {
		return nil
	}
	out := make([]string, 0, len(c.ChannelPrefixes)*c.ConnChannels)
	for _, p := range c.ChannelPrefixes {
		for j := range c.ConnChannels {
			out = append(out, p+strconv.Itoa((i+j)%c.Channels))
		}
	}
	return out
}

// channelPrefixOf returns the prefix a channel mode publishes to:
// "channel" the first of ChannelPrefixes, "channel:P" P.
func (c *Config) channelPrefixOf(mode string) string {
	if p, ok := strings.CutPrefix(mode, modeChannel+":"); ok {
		return p
	}
	return c.ChannelPrefixes[0]
}

// isChannelMode reports whether mode publishes to channels.
func isChannelMode(mode string) bool {
	return mode == modeChannel || strings.HasPrefix(mode, modeChannel+":")
}

// channelKeyMatches reports whether a message with routing key key
// ("c:<channel>") is meant for a connection in channels.
func channelKeyMatches(key string, channels []string) bool {
	ch, ok := strings.CutPrefix(key, "c:")
	if !ok {
		return false
	}
	for _, c := range channels {
		if c == ch {
			return true
		}
	}
	return false
}
