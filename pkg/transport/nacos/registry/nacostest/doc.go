// Package nacostest is an in-process fake of the Nacos 2.x naming service,
// speaking the gRPC protocol of nacos-sdk-go v2 (built on the SDK's own
// generated stubs in api/grpc), so the real, unmodified SDK client can be
// tested without a Nacos server.
//
// It implements what a naming client of ephemeral instances uses: server
// check, health check, connection setup on the bi-directional stream,
// register / deregister instance, subscribe / unsubscribe, service query,
// and pushes (NotifySubscriberRequest) to every subscriber when a service's
// instance list changes — including when a client's connection ends, which
// removes its instances as the real server does for ephemeral instances.
//
// Fidelity gaps: pushes are immediate (the real server coalesces changes for
// about 500 ms), no auth, no SetupAck or client detection, no idle
// connection ejection, no persistent instances (those go over HTTP), one
// server only. Tests written against it must wait for pushes with a
// deadline, never assume their timing.
//
// A Server is safe for concurrent use.
package nacostest
