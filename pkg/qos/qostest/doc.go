// Package qostest is the conformance suite every qos.Repository must pass.
// It imports only pkg/qos and the standard library, so end-to-end tests and
// other implementations can run it too:
//
//	func TestMyRepository(t *testing.T) {
//		qostest.Run(t, func(t *testing.T) qos.Repository {
//			return newMyRepository(t, qostest.MaxPerRecipient)
//		})
//	}
//
// Subtests run in parallel, each with a repository of its own. The cases
// live by concern: store.go saving, reading back and closing; ack.go
// acknowledgements; targets.go inboxes, broadcasts, isolation and
// listening; bounds.go expiry and the inbox bound; list.go the admin
// listing; concurrent.go concurrent calls; helpers.go what they share.
// Benchmark runs the benchmarks every implementation reports, with a
// factory too:
//
//	func BenchmarkMyRepository(b *testing.B) {
//		qostest.Benchmark(b, func(b *testing.B) qos.Repository {
//			return newMyRepository(b, qos.MaxAckIDs)
//		})
//	}
package qostest
