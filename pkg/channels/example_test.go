package channels_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/pushd/pushd/pkg/channels"
	"github.com/pushd/pushd/pkg/hub"
)

func Example() {
	policy, err := channels.New(channels.Config{Namespaces: []channels.Namespace{
		{Prefix: "news/", Join: channels.Public},
		{Name: "tenant", Match: "tenant/{tenant}/*", Join: channels.Public, Presence: true},
		{Name: "teams", Prefix: "team/", Join: channels.Identity},
		{Name: "ops", Prefix: "ops/", Join: channels.Server},
	}})
	if err != nil {
		panic(err)
	}
	// Ann of acme, whose token grants the red team and every blue one.
	ann := hub.User{ID: "ann", TenantID: "acme", Channels: []string{"team/red", "team/blue-*"}}
	ctx := context.Background()
	for _, join := range [][]string{
		{"news/sport", "tenant/acme/orders", "team/blue-2"},
		{"news/sport", "tenant/globex/orders"},
		{"team/green"},
		{"ops/deploys"},
		{"chat"},
		{"news/\n"},
	} {
		err := policy.Authorize(ctx, "demo", ann, "conn-1", join)
		var je *channels.JoinError
		switch {
		case err == nil:
			fmt.Println(join, "joined")
		case errors.Is(err, channels.ErrForbidden) && errors.As(err, &je):
			fmt.Printf("%q: 403 %s\n", je.Channel, je.Reason)
		case errors.Is(err, channels.ErrInvalidName):
			fmt.Println("400", err)
		}
	}
	ns, _ := policy.Lookup("tenant/globex/orders")
	fmt.Println(ns.Name, "presence:", ns.Presence)
	// Output:
	// [news/sport tenant/acme/orders team/blue-2] joined
	// "tenant/globex/orders": 403 another tenant's channel
	// "team/green": 403 not granted by the identity
	// "ops/deploys": 403 namespace "ops" is server-only
	// "chat": 403 matches no namespace
	// 400 channels: channel "news/\n": control character U+000A at byte 5
	// tenant presence: true
}
