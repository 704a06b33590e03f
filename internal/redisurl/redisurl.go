package redisurl

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// ErrCluster is NewClient's error for a URL that names a Redis Cluster,
// which needs NewUniversalClient.
var ErrCluster = errors.New("the URL names a Redis Cluster (cluster=1), which this component does not support yet")

// ClusterStateReload is how often, at most, a cluster client made here
// asks the cluster for its slot map again while it is used. go-redis's
// default, 60 s, would keep a client sending a failed-over slot's commands
// to its dead master for up to a minute: go-redis reloads at once on MOVED,
// but not when the old master no longer answers at all.
const ClusterStateReload = time.Second

// Every client honours its calls' context deadlines (go-redis's
// ContextTimeoutEnabled): without it a deadline shorter than the read
// timeout (5 s) is ignored, so a readiness probe or a send with a 2 s
// budget waited 5 s on a silent network.

// NewUniversalClient returns a client for rawURL: a cluster client when
// the URL has cluster=1, a failover client through the sentinels when it
// names a master_name, else a standalone client.
func NewUniversalClient(rawURL string) (goredis.UniversalClient, error) {
	u, cluster, err := parse(rawURL)
	if err != nil {
		return nil, err
	}
	if !cluster {
		return newClient(u)
	}
	if u.Query().Has("master_name") {
		return nil, errors.New("cluster=1 and master_name exclude each other")
	}
	if db := u.Path; db != "" && db != "/" && db != "/0" {
		return nil, errors.New("a Redis Cluster has only database 0")
	}
	q := u.Query()
	q.Del("cluster")
	u.RawQuery = q.Encode()
	opts, err := goredis.ParseClusterURL(u.String())
	if err != nil {
		return nil, err
	}
	opts.ClusterStateReloadInterval = ClusterStateReload
	opts.ContextTimeoutEnabled = true
	return goredis.NewClusterClient(opts), nil
}

// NewClient returns a client for rawURL: a failover client through the
// sentinels when the URL names a master_name, else a standalone client. A
// URL with cluster=1 gives ErrCluster.
func NewClient(rawURL string) (*goredis.Client, error) {
	u, cluster, err := parse(rawURL)
	if err != nil {
		return nil, err
	}
	if cluster {
		return nil, ErrCluster
	}
	return newClient(u)
}

// parse parses rawURL and its cluster parameter.
func parse(rawURL string) (u *url.URL, cluster bool, err error) {
	u, err = url.Parse(rawURL)
	if err != nil {
		return nil, false, errors.New("not a URL") // the URL may hold a password: not repeated
	}
	q := u.Query()
	if !q.Has("cluster") {
		return u, false, nil
	}
	cluster, err = strconv.ParseBool(q.Get("cluster"))
	if err != nil || len(q["cluster"]) > 1 {
		return nil, false, fmt.Errorf("cluster=%q: want cluster=1 (or 0)", q.Get("cluster"))
	}
	if !cluster {
		q.Del("cluster")
		u.RawQuery = q.Encode()
	}
	return u, cluster, nil
}

// newClient returns a standalone or Sentinel failover client for u.
func newClient(u *url.URL) (*goredis.Client, error) {
	if u.Query().Has("master_name") {
		opts, err := goredis.ParseFailoverURL(u.String())
		if err != nil {
			return nil, err
		}
		opts.ContextTimeoutEnabled = true
		return goredis.NewFailoverClient(opts), nil
	}
	opts, err := goredis.ParseURL(u.String())
	if err != nil {
		return nil, err
	}
	opts.ContextTimeoutEnabled = true
	return goredis.NewClient(opts), nil
}
