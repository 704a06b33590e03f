package main

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"github.com/pushd/pushd/pkg/channels"
)

// ChannelsConfig is an app's channels section: how many a connection may
// be in and which ones a browser may join.
type ChannelsConfig struct {
	// MaxPerConnection caps the channels of one connection. Default 16;
	// -1 disables the cap.
	MaxPerConnection int `yaml:"max_per_connection"`
	// Namespaces decide, in order, which channels a browser may join; a
	// channel in none can be joined only through the server API (or the
	// identity's own grants). Default none.
	Namespaces []NamespaceConfig `yaml:"namespaces"`
	// Webhook is asked about joins of namespaces with join: webhook.
	Webhook struct {
		URL      string   `yaml:"url"`
		Secret   string   `yaml:"secret"`
		Timeout  Duration `yaml:"timeout"`
		CacheTTL Duration `yaml:"cache_ttl"`
	} `yaml:"webhook"`
}

// NamespaceConfig is one namespace: the channels whose name starts with
// prefix, or matches match ("*" any run, "{tenant}" and "{user}" the
// identity's own), and who may join them from a browser.
type NamespaceConfig struct {
	Name   string `yaml:"name"`
	Prefix string `yaml:"prefix"`
	Match  string `yaml:"match"`
	// Join is public, identity, webhook or server.
	Join string `yaml:"join"`
	// Presence sends join and leave events to the channels' subscribers.
	Presence bool `yaml:"presence"`
	// Hooks reports each join and leave to the app's hooks.url.
	Hooks bool `yaml:"hooks"`
	// History makes the namespace's channels resumable streams that keep
	// that much history (see HistoryConfig). Default none.
	History *StreamHistoryConfig `yaml:"history"`
}

// channelPolicy builds the app's channel policy (nil without namespaces:
// browsers then join only the channels their identity names).
func channelPolicy(ac AppConfig) (*channels.Policy, error) {
	cc := ac.Channels
	if len(cc.Namespaces) == 0 {
		return nil, nil
	}
	cfg := channels.Config{MaxNameLength: ac.MaxNameLength}
	for _, ns := range cc.Namespaces {
		cfg.Namespaces = append(cfg.Namespaces, channels.Namespace{Name: ns.Name, Prefix: ns.Prefix, Match: ns.Match,
			Join: channels.Mode(ns.Join), Presence: ns.Presence})
	}
	if cc.Webhook.URL != "" {
		asker, err := channels.NewWebhookAsker(channels.WebhookConfig{URL: cc.Webhook.URL, Secret: cc.Webhook.Secret,
			Timeout: time.Duration(cc.Webhook.Timeout), CacheTTL: time.Duration(cc.Webhook.CacheTTL)})
		if err != nil {
			return nil, fmt.Errorf("webhook: %w", err)
		}
		cfg.Webhook = asker
	}
	return channels.New(cfg)
}

// validateChannels checks an app's channels section (key is "apps[i]").
func validateChannels(ac AppConfig, key string, p *problems) {
	if _, err := channelPolicy(ac); err != nil {
		p.addf("%s.channels: %s", key, strings.TrimPrefix(err.Error(), "channels: "))
	}
	for i, ns := range ac.Channels.Namespaces {
		if ns.Hooks && ac.Hooks.URL == "" {
			p.addf("%s.channels.namespaces[%d].hooks: needs %s.hooks.url", key, i, key)
		}
	}
}

// name is the namespace's name as the channel policy gives it back from
// Lookup: Name, else its prefix or pattern.
func (ns NamespaceConfig) name() string { return cmp.Or(ns.Name, ns.Prefix, ns.Match) }
