package redisurl

import "testing"

func TestNewClient(t *testing.T) {
	for _, tc := range []struct {
		url, addr string
		ok        bool
	}{
		{"redis://127.0.0.1:6379/2", "127.0.0.1:6379", true},
		{"rediss://user:pw@cache.internal:6380/0", "cache.internal:6380", true},
		{"redis://127.0.0.1:26379/0?master_name=pushd&addr=127.0.0.1:26380", "FailoverClient", true},
		{"redis://127.0.0.1:26379/0?master_name=pushd&unknown=1", "", false},
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
}
