package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/pushd/pushd/pkg/client"
)

// Each example runs against an in-process pushd (mustStart): app "hr",
// API key "key", browsers connected with mustConnect.

func ExampleNew() {
	p := mustStart()
	defer p.Close()

	c, err := client.New(client.Config{
		URL:        p.URL, // e.g. "http://pushd:8080"
		App:        "hr",
		APIKey:     "key",
		HTTPClient: &http.Client{Timeout: 10 * time.Second},
		Retries:    3, // reads only; sends are never retried
	})
	if err != nil {
		panic(err)
	}
	st, err := c.Stats(context.Background())
	fmt.Println(st.Connections, err)
	// Output: 0 <nil>
}

func ExampleClient_Send() {
	p := mustStart()
	defer p.Close()
	p.mustConnect("userId=42&tenantId=acme&listeners=payroll")
	p.mustConnect("userId=43&tenantId=acme")
	c, _ := client.New(client.Config{URL: p.URL, App: "hr", APIKey: "key"})

	// To the tenant's connections that listen to "payroll", kept until
	// acknowledged for at most a day.
	res, err := c.Send(context.Background(), client.Message{
		To:    client.Target{TenantIDs: []string{"acme"}, Listening: true},
		Event: "payroll",
		Data:  map[string]string{"month": "2026-11"},
		QoS:   true,
		TTL:   "24h",
	})
	fmt.Println(res.Delivered, res.Stored, err)
	// Output: 1 true <nil>
}

func ExampleClient_SendBatch() {
	p := mustStart()
	defer p.Close()
	p.mustConnect("userId=42")
	p.mustConnect("userId=43")
	c, _ := client.New(client.Config{URL: p.URL, App: "hr", APIKey: "key"})

	// A different message to each user in one call; a refused message
	// does not stop the others.
	results, err := c.SendBatch(context.Background(), []client.Message{
		{To: client.Target{UserIDs: []string{"42"}}, Event: "salary", Data: map[string]int{"amount": 4200}},
		{To: client.Target{UserIDs: []string{"43"}}, Event: "salary", Data: map[string]int{"amount": 4300}},
		{To: client.Target{UserIDs: []string{"44"}}, Event: "bad\nname"},
	})
	if err != nil {
		panic(err)
	}
	for _, r := range results {
		var apiErr *client.APIError
		if errors.As(r.Err, &apiErr) {
			fmt.Println("refused:", apiErr.Status)
			continue
		}
		fmt.Println("delivered:", r.Delivered)
	}
	// Output:
	// delivered: 1
	// delivered: 1
	// refused: 400
}

func ExampleClient_SendToUser() {
	p := mustStart()
	defer p.Close()
	p.mustConnect("userId=42")
	c, _ := client.New(client.Config{URL: p.URL, App: "hr", APIKey: "key"})

	n, err := c.SendToUser(context.Background(), "42", "myHrBell", map[string]int{"count": 100})
	fmt.Println(n, err)
	// Output: 1 <nil>
}

func ExampleClient_SendToToken() {
	p := mustStart()
	defer p.Close()
	p.mustConnect("userId=42&accessToken=t-1")
	c, _ := client.New(client.Config{URL: p.URL, App: "hr", APIKey: "key"})

	n, err := c.SendToToken(context.Background(), "t-1", "notice", "signed in elsewhere")
	fmt.Println(n, err)
	// Output: 1 <nil>
}

func ExampleClient_SendToTenant() {
	p := mustStart()
	defer p.Close()
	p.mustConnect("userId=42&tenantId=acme")
	p.mustConnect("userId=43&tenantId=acme")
	p.mustConnect("userId=44&tenantId=other")
	c, _ := client.New(client.Config{URL: p.URL, App: "hr", APIKey: "key"})

	n, err := c.SendToTenant(context.Background(), "acme", "notice", "maintenance at 6")
	fmt.Println(n, err)
	// Output: 2 <nil>
}

func ExampleClient_SendToChannel() {
	p := mustStart()
	defer p.Close()
	p.mustConnect("userId=42&channel=board")
	p.mustConnect("userId=43")
	c, _ := client.New(client.Config{URL: p.URL, App: "hr", APIKey: "key"})

	n, err := c.SendToChannel(context.Background(), "board", "refresh", nil)
	fmt.Println(n, err)
	// Output: 1 <nil>
}

func ExampleClient_SendToAll() {
	p := mustStart()
	defer p.Close()
	p.mustConnect("userId=42")
	p.mustConnect("userId=43")
	c, _ := client.New(client.Config{URL: p.URL, App: "hr", APIKey: "key"})

	n, err := c.SendToAll(context.Background(), "reload", "")
	fmt.Println(n, err)
	// Output: 2 <nil>
}

func ExampleClient_Users() {
	p := mustStart()
	defer p.Close()
	p.mustConnect("userId=42&name=Ann")
	p.mustConnect("userId=42&name=Ann")
	p.mustConnect("userId=43&name=Bob")
	c, _ := client.New(client.Config{URL: p.URL, App: "hr", APIKey: "key"})

	page, err := c.Users(context.Background(), 1, 10)
	if err != nil {
		panic(err)
	}
	fmt.Println("total", page.Total)
	for _, u := range page.List {
		fmt.Println(u.ID, u.Name, u.Connections)
	}
	// Output:
	// total 2
	// 42 Ann 2
	// 43 Bob 1
}

func ExampleClient_SearchUsers() {
	p := mustStart()
	defer p.Close()
	p.mustConnect("userId=42&name=Ann")
	p.mustConnect("userId=43&name=Bob")
	c, _ := client.New(client.Config{URL: p.URL, App: "hr", APIKey: "key"})

	page, err := c.SearchUsers(context.Background(), client.UsersQuery{Name: "an", PageSize: 20})
	fmt.Println(page.Total, page.List[0].ID, page.PageSize, err)
	// Output: 1 42 20 <nil>
}

func ExampleClient_Connections() {
	p := mustStart()
	defer p.Close()
	p.mustConnect("userId=42&listeners=bell,news")
	p.mustConnect("userId=43")
	c, _ := client.New(client.Config{URL: p.URL, App: "hr", APIKey: "key"})

	page, err := c.Connections(context.Background(), "42", 1, 10)
	fmt.Println(page.Total, page.List[0].AccessUserID, page.List[0].Listeners, err)
	// Output: 1 42 [bell news] <nil>
}

func ExampleClient_SearchConnections() {
	p := mustStart()
	defer p.Close()
	p.mustConnect("userId=42&clientId=mobile-web")
	p.mustConnect("userId=42&clientId=desktop")
	c, _ := client.New(client.Config{URL: p.URL, App: "hr", APIKey: "key"})

	page, err := c.SearchConnections(context.Background(), client.ConnectionsQuery{UserID: "42", ClientID: "desktop"})
	fmt.Println(page.Total, page.List[0].ClientID, err)
	// Output: 1 desktop <nil>
}

func ExampleClient_Stats() {
	p := mustStart()
	defer p.Close()
	p.mustConnect("userId=42&tenantId=acme&channel=board")
	p.mustConnect("userId=43&tenantId=acme")
	c, _ := client.New(client.Config{URL: p.URL, App: "hr", APIKey: "key"})

	st, err := c.Stats(context.Background())
	fmt.Printf("%+v %v\n", st, err)
	// Output: {Connections:2 Users:2 AccessTokens:0 Tenants:1 Channels:1} <nil>
}

func ExampleClient_Subscribe() {
	p := mustStart()
	defer p.Close()
	p.mustConnect("userId=42")
	p.mustConnect("userId=42")
	c, _ := client.New(client.Config{URL: p.URL, App: "hr", APIKey: "key"})
	ctx := context.Background()

	// Both connections of user 42, on whichever nodes, join the room; a
	// send to it reaches them.
	changed, err := c.Subscribe(ctx, client.Target{UserIDs: []string{"42"}}, "room-7")
	fmt.Println(changed, err)
	n, err := c.SendToChannel(ctx, "room-7", "chat", "hello")
	fmt.Println(n, err)
	// Output:
	// 2 <nil>
	// 2 <nil>
}

func ExampleClient_Unsubscribe() {
	p := mustStart()
	defer p.Close()
	p.mustConnect("userId=42&channel=room-7")
	c, _ := client.New(client.Config{URL: p.URL, App: "hr", APIKey: "key"})
	ctx := context.Background()

	// The connection leaves the room it joined from the browser.
	changed, err := c.Unsubscribe(ctx, client.Target{UserIDs: []string{"42"}}, "room-7")
	fmt.Println(changed, err)
	n, err := c.SendToChannel(ctx, "room-7", "chat", "hello")
	fmt.Println(n, err)
	// Output:
	// 1 <nil>
	// 0 <nil>
}

func ExampleClient_Channels() {
	p := mustStart()
	defer p.Close()
	p.mustConnect("userId=42&channels=room-7,room-8")
	p.mustConnect("userId=43&channel=room-7")
	p.mustConnect("userId=43&channel=lobby")
	c, _ := client.New(client.Config{URL: p.URL, App: "hr", APIKey: "key"})

	page, err := c.Channels(context.Background(), client.ChannelsQuery{Prefix: "room-"})
	if err != nil {
		panic(err)
	}
	for _, ch := range page.List {
		fmt.Println(ch.Name, ch.Connections, ch.Users)
	}
	// Output:
	// room-7 2 2
	// room-8 1 1
}

func ExampleClient_Presence() {
	p := mustStart()
	defer p.Close()
	p.mustConnect("userId=42&name=Ann&channel=room-7")
	p.mustConnect("userId=42&name=Ann&channel=room-7")
	p.mustConnect("userId=43&name=Bob&channel=room-7")
	c, _ := client.New(client.Config{URL: p.URL, App: "hr", APIKey: "key"})

	// Every user in the room, and the first page of its connections.
	pr, err := c.Presence(context.Background(), "room-7", 1, 2)
	if err != nil {
		panic(err)
	}
	fmt.Println(pr.Connections, len(pr.List))
	for _, u := range pr.Users {
		fmt.Println(u.ID, u.Name, u.Connections)
	}
	// Output:
	// 3 2
	// 42 Ann 2
	// 43 Bob 1
}

func ExampleClient_History() {
	p := mustStart()
	defer p.Close()
	c, _ := client.New(client.Config{URL: p.URL, App: "hr", APIKey: "key"})
	ctx := context.Background()
	for i := range 3 {
		if _, err := c.Send(ctx, client.Message{To: client.Target{Channels: []string{"news"}}, Event: "headline", Data: i}); err != nil {
			panic(err)
		}
	}
	// The events after the first, as a reconnect that saw it would get them.
	h, err := c.History(ctx, "news", 1, "", 10)
	if err != nil {
		panic(err)
	}
	fmt.Println(h.Top, h.More)
	for _, e := range h.List {
		fmt.Println(e.Offset, e.Event, e.Data)
	}
	// Output:
	// 3 false
	// 2 headline 1
	// 3 headline 2
}

func ExampleClient_Online() {
	p := mustStart()
	defer p.Close()
	p.mustConnect("userId=42")
	c, _ := client.New(client.Config{URL: p.URL, App: "hr", APIKey: "key"})

	for _, user := range []string{"42", "43"} {
		on, err := c.Online(context.Background(), user)
		fmt.Println(user, on, err)
	}
	// Output:
	// 42 true <nil>
	// 43 false <nil>
}

func ExampleClient_Disconnect() {
	p := mustStart()
	defer p.Close()
	s := p.mustConnect("userId=42")
	c, _ := client.New(client.Config{URL: p.URL, App: "hr", APIKey: "key"})

	n, err := c.Disconnect(context.Background(), []string{"42"}, nil, nil)
	fmt.Println(n, err)
	fmt.Println(s.await("event:connect-close"))
	// Output:
	// 1 <nil>
	// <nil>
}

func ExampleClient_SetDuration() {
	p := mustStart()
	defer p.Close()
	s := p.mustConnect("userId=42")
	c, _ := client.New(client.Config{URL: p.URL, App: "hr", APIKey: "key"})

	n, err := c.SetDuration(context.Background(), client.Target{UserIDs: []string{"42"}}, 3600)
	fmt.Println(n, err)
	fmt.Println(s.await(`data:{"duration":"3600"}`))
	// Output:
	// 1 <nil>
	// <nil>
}

func ExampleClient_Messages() {
	p := mustStart()
	defer p.Close()
	c, _ := client.New(client.Config{URL: p.URL, App: "hr", APIKey: "key"})
	ctx := context.Background()
	// User 42 is offline: the event waits in the backlog.
	if _, err := c.Send(ctx, client.Message{To: client.Target{UserIDs: []string{"42"}}, Event: "bell", Data: "hi", QoS: true}); err != nil {
		panic(err)
	}

	page, err := c.Messages(ctx, client.MessagesQuery{UserID: "42"})
	fmt.Println(page.Total, page.List[0].Event, page.List[0].Data, err)
	// Output: 1 bell hi <nil>
}

func ExampleAPIError() {
	p := mustStart()
	defer p.Close()
	c, _ := client.New(client.Config{URL: p.URL, App: "hr", APIKey: "wrong"})

	_, err := c.Stats(context.Background())
	var apiErr *client.APIError
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.Status, apiErr.Message)
	}
	// Output: 401 invalid API key for this app
}
