package redisurl

import (
	"errors"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

func TestNewClient(t *testing.T) {
	for _, tc := range []struct {
		url, addr string
		ok        bool
	}{
		{"redis://127.0.0.1:6379/2", "127.0.0.1:6379", true},
		{"rediss://user:pw@cache.internal:6380/0", "cache.internal:6380", true},
		{"redis://127.0.0.1:26379/0?master_name=pushd&addr=127.0.0.1:26380", "FailoverClient", true},
		{"redis://127.0.0.1:6379/0?cluster=0", "127.0.0.1:6379", true},
		{"redis://127.0.0.1:26379/0?master_name=pushd&unknown=1", "", false},
		{"redis://127.0.0.1:6379/0?cluster=1", "", false},
		{"http://127.0.0.1:6379", "", false},
		{"%zz", "", false},
	} {
		c, err := NewClient(tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok=%v", tc.url, err, tc.ok)
			continue
		}
		if err != nil {
			continue
		}
		if got := c.Options().Addr; got != tc.addr {
			t.Errorf("%s: addr %q, want %q", tc.url, got, tc.addr)
		}
		_ = c.Close()
	}
	if _, err := NewClient("redis://h1:7000/0?cluster=1&addr=h2:7001"); !errors.Is(err, ErrCluster) {
		t.Errorf("cluster URL: err %v, want ErrCluster", err)
	}
}

func TestNewUniversalClient(t *testing.T) {
	for _, tc := range []struct {
		url  string
		kind string // "client", "failover" or "cluster"
		want string // the addresses, or the client's address
	}{
		{"redis://127.0.0.1:6379/2", "client", "127.0.0.1:6379"},
		{"redis://127.0.0.1:26379/0?master_name=pushd&addr=127.0.0.1:26380", "failover", "FailoverClient"},
		{"redis://h1:7000/0?cluster=1&addr=h2:7001&addr=h3:7002", "cluster", "h1:7000 h2:7001 h3:7002"},
		{"redis://h1:7000?cluster=true", "cluster", "h1:7000"},
		{"rediss://u:pw@h1:7000/?cluster=1&addr=h2:7001&read_timeout=2s", "cluster", "h1:7000 h2:7001"},
	} {
		c, err := NewUniversalClient(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		var kind, got string
		switch c := c.(type) {
		case *goredis.ClusterClient:
			kind, got = "cluster", strings.Join(c.Options().Addrs, " ")
			if r := c.Options().ClusterStateReloadInterval; r != ClusterStateReload {
				t.Errorf("%s: state reload every %v, want %v", tc.url, r, ClusterStateReload)
			}
		case *goredis.Client:
			kind, got = "client", c.Options().Addr
			if got == "FailoverClient" {
				kind = "failover"
			}
		}
		if kind != tc.kind || got != tc.want {
			t.Errorf("%s: %s %q, want %s %q", tc.url, kind, got, tc.kind, tc.want)
		}
		_ = c.Close()
	}
	cc, err := NewUniversalClient("redis://u:pw@h1:7000/0?cluster=1&read_timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if o := cc.(*goredis.ClusterClient).Options(); o.Username != "u" || o.Password != "pw" || o.ReadTimeout.String() != "2s" {
		t.Errorf("cluster options: user %q, password %q, read timeout %v", o.Username, o.Password, o.ReadTimeout)
	}
}

// TestErrorsHideThePassword: a bad URL's error says what is wrong without
// repeating the URL, whose password would reach the logs.
func TestErrorsHideThePassword(t *testing.T) {
	const pw = "s3cr3t-pw"
	for _, raw := range []string{
		"redis://:" + pw + "@h1:7000/0?cluster=1&addr=nohost",
		"redis://:" + pw + "@h1:7000/0?cluster=1&unknown=1",
		"redis://:" + pw + "@h1:7000/3?cluster=1",
		"redis://:" + pw + "@h1:7000/0?cluster=yes",
		"redis://:" + pw + "@h1:7000/0?cluster=1&cluster=1",
		"redis://:" + pw + "@h1:7000/0?cluster=1&master_name=m",
		"http://:" + pw + "@h1:7000/0?cluster=1",
		"redis://:" + pw + "@h1:7000/x",
		"redis://:" + pw + "@h1:7000/0?master_name=m&bogus=1",
		"redis://:" + pw + "@h1:7000/0%zz",
	} {
		_, err := NewUniversalClient(raw)
		if err == nil {
			t.Errorf("%s: no error", raw)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("%s: error repeats the password: %v", raw, err)
		}
	}
}
