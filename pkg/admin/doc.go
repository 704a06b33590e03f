// Package admin serves pushd's operator page at /admin/: for every app,
// the nodes serving it (connections, users, send and delivery counters, so
// the page can show rates), the online users and the open connections,
// refreshed live by the page. It only reads; kicking and sending stay with
// the server API.
//
// The page itself holds no data; the JSON it polls (/admin/api/overview)
// needs the admin token as a Bearer token. A Handler is safe for
// concurrent use.
package admin
