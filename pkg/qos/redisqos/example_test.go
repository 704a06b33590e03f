package redisqos_test

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushd/pushd/pkg/qos"
	"github.com/pushd/pushd/pkg/qos/redisqos"
)

// A store on a Redis client; the keys of app "shop" start with
// "myapp:{shop}:". The client belongs to the caller, who closes it.
func Example() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()
	repo, err := redisqos.New(redisqos.Config{Client: client, Prefix: "myapp", DefaultTTL: time.Hour})
	if err != nil {
		panic(err)
	}
	defer repo.Close()

	ctx := context.Background()
	err = repo.Save(ctx, "shop", qos.Message{ID: qos.NewID(), Event: "order-shipped",
		Data: `{"order":42}`, UserIDs: []string{"alice"}})
	if err != nil {
		fmt.Println("save:", err)
		return
	}
	pending, err := repo.Pending(ctx, "shop", qos.Recipient{UserID: "alice"}, "", 100)
	fmt.Println(len(pending), err)
}
