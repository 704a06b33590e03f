// Package netsim gives tests simulated hosts: each host is a network
// namespace of its own, with one interface (eth0) on a private /24 and a
// veth pair to a bridge. The bridge lives in one more namespace, the
// switch, so nothing is added to the machine's own namespace and its
// firewall (br_netfilter passes bridged packets through the machine's
// FORWARD chain) never sees the test traffic: hosts reach one another and
// nothing else.
//
// A test creates a Network with New and hosts with AddHost; everything is
// removed when the test ends (t.Cleanup), also when it fails, and the
// names carry a random suffix so that parallel runs do not collide.
// Processes run inside a host through Command (ip netns exec); the test
// process itself talks from a host with DialContext, Listen and
// HTTPClient, which create their sockets inside the host's namespace.
//
// Faults: SetLink adds latency and loss to the packets leaving a host
// (tc netem), Partition and Heal take the host's link down and up (the
// host is cut off from every other host, its processes and sockets stay),
// Cut and Mend drop the packets between two hosts only (an nft rule in
// the switch's bridge), so one host loses another while it still reaches
// the rest.
//
// New skips the test, saying why, when the machine refuses: not root, no
// network namespaces, no veth or bridge. With the environment variable CI
// set, a missing ip program fails the test instead (the rule of
// internal/testredis.Binary). Cut skips when nft is missing or refuses;
// SetLink returns ErrNoNetem when the kernel has no netem qdisc, so a test
// can carry on without the latency and say so.
package netsim
