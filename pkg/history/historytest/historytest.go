package historytest

import (
	"testing"

	"github.com/pushd/pushd/pkg/history"
)

// Option changes how Run runs the suite.
type Option func(skips map[string]string)

// Skip skips the case named name (a subtest name of Run, e.g.
// "StreamExpires"), reporting why: for a stand-in server that lacks what
// the case needs.
func Skip(name, why string) Option {
	return func(skips map[string]string) { skips[name] = why }
}

// Run runs the suite. newStore returns a new, empty store (unbounded, or
// bounded generously: the cases keep a few hundred small entries in a few
// streams) and releases it in t.Cleanup; Run calls it once per subtest.
func Run(t *testing.T, newStore func(t *testing.T) history.Store, opts ...Option) {
	skips := map[string]string{}
	for _, o := range opts {
		o(skips)
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s history.Store)
	}{
		{"AppendOffsets", testAppendOffsets},
		{"EntryRoundTrip", testEntryRoundTrip},
		{"StreamsIsolated", testStreamsIsolated},
		{"AppsIsolated", testAppsIsolated},
		{"SinceMiddleAndTop", testSinceMiddleAndTop},
		{"Paging", testPaging},
		{"Trimmed", testTrimmed},
		{"Expired", testExpired},
		{"StreamExpires", testStreamExpires},
		{"EpochChanged", testEpochChanged},
		{"TopCreatesEpoch", testTopCreatesEpoch},
		{"SinceCreatesEpoch", testSinceCreatesEpoch},
		{"ConcurrentAppends", testConcurrentAppends},
		{"ConcurrentStreams", testConcurrentStreams},
		{"Invalid", testInvalid},
		{"Canceled", testCanceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if why, ok := skips[tc.name]; ok {
				t.Skip(why)
			}
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}
