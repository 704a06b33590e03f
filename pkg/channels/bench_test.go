package channels

import (
	"context"
	"testing"

	"github.com/pushd/pushd/pkg/hub"
)

// BenchmarkAuthorizePublic is the join check of every connect in a public
// namespace, behind two namespaces that do not match.
func BenchmarkAuthorizePublic(b *testing.B) {
	p := newTestPolicy(b, &recordingAsker{})
	u := hub.User{ID: "ann", TenantID: "acme"}
	ctx := context.Background()
	channels := []string{"tenant/acme/orders"}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Authorize(ctx, "demo", u, "c1", channels); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthorizePublicPrefix is the same for the first namespace, a
// prefix.
func BenchmarkAuthorizePublicPrefix(b *testing.B) {
	p := newTestPolicy(b, &recordingAsker{})
	u := hub.User{ID: "ann", TenantID: "acme"}
	ctx := context.Background()
	channels := []string{"news/sport"}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Authorize(ctx, "demo", u, "c1", channels); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthorizeIdentity checks a grant pattern, parsed on each call.
func BenchmarkAuthorizeIdentity(b *testing.B) {
	p := newTestPolicy(b, &recordingAsker{})
	u := hub.User{ID: "ann", TenantID: "acme", Channels: []string{"team/red", "team/blue", "team/green-*"}}
	ctx := context.Background()
	channels := []string{"team/green-7"}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Authorize(ctx, "demo", u, "c1", channels); err != nil {
			b.Fatal(err)
		}
	}
}
