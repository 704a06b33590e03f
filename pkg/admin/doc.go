// Package admin serves pushd's operator page at /admin/: for every app,
// charts of the last minutes per node (connections, sends/s, deliveries/s,
// slow closes) and of the QoS backlog, the nodes' figures, a search of the
// online users and the open connections with paging, and two actions —
// send a test event to a user or a connection, kick a user or a
// connection — each confirmed in the page first.
//
// # Endpoints
//
// Everything under /admin/api/ needs the admin token as
// "Authorization: Bearer <token>"; it is never read from a cookie, so
// another site cannot make an operator's browser act. Errors are
// {"error": "..."} with their status (400, 401, 404, 413, 415); a hub
// error gets the status the API gives it (internal/httpx/hubhttp): 503
// with Retry-After while the node shuts down, 504 when the cluster does
// not answer in time, 500 otherwise.
//
//   - GET overview[?summary=1]: per app the nodes with their stats and
//     counters, the totals, the QoS backlog and (without summary) the
//     first Config.Limit users and connections.
//   - GET users?app=&userId=&name=&offset=&limit=: a Page of UserInfo by id;
//     userId is exact, name is contained in the user's name, ignoring case.
//   - GET connections?app=&userId=&name=&offset=&limit=: a Page of
//     ConnectionInfo by user name, then age, with the total.
//   - POST send, body SendRequest: a test event (no QoS) to the user's
//     connections on every node, or to one connection; answers SendResponse.
//   - POST kick, body KickRequest: closes them with reason kicked (the
//     clients are told and stay closed); answers KickResponse.
//
// A page holds at most 200 items and ends within the first 1000 matches:
// every node sends that many at most.
//
// # History
//
// The server keeps no time series: the page samples the overview every 2 s
// and keeps the last 10 minutes per node in ring buffers in the browser,
// drawn on canvases without any library. So nothing runs while nobody
// watches and every node can answer (the overview surveys the cluster);
// the price is that the charts start when the page is opened.
//
// A Handler is safe for concurrent use.
package admin
