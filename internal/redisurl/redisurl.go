package redisurl

import (
	"errors"
	"net/url"

	goredis "github.com/redis/go-redis/v9"
)

// NewClient returns a client for rawURL: a failover client through the
// sentinels when the URL names a master_name, else a standalone client.
func NewClient(rawURL string) (*goredis.Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("not a URL") // the URL may hold a password: not repeated
	}
	if u.Query().Has("master_name") {
		opts, err := goredis.ParseFailoverURL(rawURL)
		if err != nil {
			return nil, err
		}
		return goredis.NewFailoverClient(opts), nil
	}
	opts, err := goredis.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	return goredis.NewClient(opts), nil
}
