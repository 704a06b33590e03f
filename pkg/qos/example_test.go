package qos_test

import (
	"context"
	"fmt"
	"time"

	"github.com/pushd/pushd/pkg/qos"
)

// A message to a user waits in the user's inbox until the user acknowledges
// it; a message to a tenant is delivered once to every user of the tenant.
func ExampleMemory() {
	ctx := context.Background()
	repo, err := qos.NewMemory(qos.MemoryConfig{})
	if err != nil {
		panic(err)
	}
	defer repo.Close()

	_ = repo.Save(ctx, "shop", qos.Message{
		ID: qos.NewID(), Event: "order-shipped", Data: `{"order":42}`,
		UserIDs: []string{"alice"}, ExpiresAt: time.Now().Add(24 * time.Hour),
	})
	_ = repo.Save(ctx, "shop", qos.Message{
		ID: qos.NewID(), Event: "maintenance", Data: "tonight 22:00",
		TenantIDs: []string{"acme"},
	})

	alice := qos.Recipient{UserID: "alice", TenantID: "acme"}
	pending, _ := repo.Pending(ctx, "shop", alice, "", 100)
	for _, m := range pending {
		fmt.Println(m.Event, m.Data)
	}
	n, _ := repo.Ack(ctx, "shop", alice, pending[0].ID, pending[1].ID)
	fmt.Println("acknowledged:", n)

	bob := qos.Recipient{UserID: "bob", TenantID: "acme"}
	pending, _ = repo.Pending(ctx, "shop", bob, "", 100)
	fmt.Println("bob:", len(pending), pending[0].Event)
	// Output:
	// order-shipped {"order":42}
	// maintenance tonight 22:00
	// acknowledged: 2
	// bob: 1 maintenance
}
