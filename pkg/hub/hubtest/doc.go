// Package hubtest is the conformance suite every hub.Transport must pass,
// and Loopback, an in-memory Transport for tests of code above the hub.
//
// The suite builds a cluster of real hubs, one per node, each behind an
// HTTP test server whose streams are served by Hub.ServeStream, and checks
// through the public hub API what a cluster promises: exact delivery
// counts for every kind of target, the listening filter, surveys that
// merge all nodes, cluster-wide disconnects, a node that dies dropping
// out, and (when the backend can be restarted) routes that come back
// after a restart. A transport package runs it with a factory:
//
//	func TestConformance(t *testing.T) {
//		hubtest.Run(t, func(t *testing.T, apps []string, nodeIDs []string) hubtest.Cluster {
//			var c hubtest.Cluster
//			for _, id := range nodeIDs {
//				c.Nodes = append(c.Nodes, hubtest.Node{Transport: newMyTransport(t, apps, id)})
//			}
//			return c
//		})
//	}
//
// Subtests run in parallel, each on a cluster of its own.
package hubtest
