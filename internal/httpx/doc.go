// Package httpx holds the HTTP toolkit shared by pushd's handlers (web,
// api, admin, upstream and the nacos transport's peer server), so that
// each answers alike:
//
//   - WriteJSON and WriteError: every error is {"error": "…"} with its
//     status; ReadJSON decodes a bounded JSON body and answers 400 or 413
//     itself; WrapOK is the seed server's success envelope.
//   - Page, PageOf, PageFrom, PageLimit, PageParams: the seed's PageInfo
//     paging (pageNum from 1, pageSize default 100).
//   - CheckBearer: the one Authorization: Bearer check, constant-time
//     against a list of keys (the API's keys of an app, the admin token).
//   - ValidPath: the one rule for the {path} of a message or upload call,
//     applied by pkg/web before the call and by pkg/upstream before it
//     forwards.
//
// It imports nothing of pushd, so that pkg/upstream, which backends
// written in Go import for Verify, links no hub. Its subpackage hubhttp
// holds what needs the hub: the one map from hub errors to statuses and
// the QoS backlog pages.
//
// The package is internal: programs outside the module use the forwards
// that pkg/web keeps for UpstreamHandler authors (web.WriteJSON,
// web.WriteError, web.WrapOK) and upstream.ValidPath.
package httpx
