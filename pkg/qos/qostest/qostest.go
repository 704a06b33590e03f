package qostest

import (
	"testing"

	"github.com/pushd/pushd/pkg/qos"
)

// MaxPerRecipient is the inbox bound the repositories given to Run must be
// configured with.
const MaxPerRecipient = 5

// Option changes how Run runs the suite.
type Option func(skips map[string]string)

// Skip skips the case named name (a subtest name of Run, e.g. "Expiry"),
// reporting why: for a stand-in server that lacks what the case needs.
func Skip(name, why string) Option {
	return func(skips map[string]string) { skips[name] = why }
}

// Run runs the suite. newRepo returns a new, empty repository, bounded to
// MaxPerRecipient messages per inbox, and closes it in t.Cleanup; Run calls
// it once per subtest.
func Run(t *testing.T, newRepo func(t *testing.T) qos.Repository, opts ...Option) {
	skips := map[string]string{}
	for _, o := range opts {
		o(skips)
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, r qos.Repository)
	}{
		{"SavePendingOrder", testSavePendingOrder},
		{"PendingLimitAndAfter", testPendingLimitAndAfter},
		{"MessageRoundTrip", testMessageRoundTrip},
		{"InvalidMessages", testInvalidMessages},
		{"SaveTwice", testSaveTwice},
		{"AckPerUser", testAckPerUser},
		{"AckByOtherIgnored", testAckByOtherIgnored},
		{"AckUnknownIDs", testAckUnknownIDs},
		{"AckBound", testAckBound},
		{"AccessTokenInbox", testAccessTokenInbox},
		{"TenantBroadcast", testTenantBroadcast},
		{"ChannelBroadcast", testChannelBroadcast},
		{"AllBroadcast", testAllBroadcast},
		{"DirectAndBroadcast", testDirectAndBroadcast},
		{"TenantsIsolated", testTenantsIsolated},
		{"TenantAckKeysDistinct", testTenantAckKeysDistinct},
		{"TenantlessUserScoped", testTenantlessUserScoped},
		{"Listening", testListening},
		{"Expiry", testExpiry},
		{"PerRecipientBound", testPerRecipientBound},
		{"ListFiltersAndPaging", testListFiltersAndPaging},
		{"AppsIsolated", testAppsIsolated},
		{"Concurrent", testConcurrent},
		{"ConcurrentAckOnce", testConcurrentAckOnce},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if why, ok := skips[tc.name]; ok {
				t.Skip(why)
			}
			t.Parallel()
			tc.fn(t, newRepo(t))
		})
	}
}
