// Package historytest is the conformance suite every history.Store must
// pass. It imports only pkg/history, internal/await and the standard
// library:
//
//	func TestMyStore(t *testing.T) {
//		historytest.Run(t, func(t *testing.T) history.Store {
//			return newMyStore(t)
//		})
//	}
//
// Subtests run in parallel, each with a store of its own. The cases live
// by concern: store.go appending, reading back, isolation of streams and
// apps, bad arguments; since.go reading from a position, paging, epochs;
// bounds.go Size and TTL (the TTL cases wait about a second, polling);
// concurrent.go concurrent calls; helpers.go what they share. Benchmark
// runs the benchmarks every implementation reports, with a factory too:
//
//	func BenchmarkMyStore(b *testing.B) {
//		historytest.Benchmark(b, func(b *testing.B) history.Store {
//			return newMyStore(b)
//		})
//	}
package historytest
