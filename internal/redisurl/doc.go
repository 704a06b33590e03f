// Package redisurl turns the Redis URLs of pushd's configuration into
// go-redis clients: a standalone server (redis:// or rediss://, as go-redis
// parses them); when the URL has a master_name query parameter, a Sentinel
// failover client whose addresses are the sentinels', e.g.
//
//	redis://:password@sentinel-1:26379/0?master_name=pushd&addr=sentinel-2:26379&addr=sentinel-3:26379
//
// and, when it has cluster=1, a Redis Cluster client whose seed nodes are
// the URL's host and its addr parameters (database 0 only), e.g.
//
//	redis://:password@h1:7000/0?cluster=1&addr=h2:7001&addr=h3:7002
//
// Errors never repeat the URL, which may hold a password.
package redisurl
