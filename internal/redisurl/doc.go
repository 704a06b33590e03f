// Package redisurl turns the Redis URLs of pushd's configuration into
// go-redis clients: a standalone server (redis:// or rediss://, as go-redis
// parses them), or, when the URL has a master_name query parameter, a
// Sentinel failover client whose addresses are the sentinels', e.g.
//
//	redis://:password@sentinel-1:26379/0?master_name=pushd&addr=sentinel-2:26379&addr=sentinel-3:26379
package redisurl
