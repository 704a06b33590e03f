package hub_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/pushd/pushd/pkg/hub"
)

// A hub serves one app: an HTTP handler registers each browser with Connect
// and hands the stream to ServeStream; the backend sends with SendBy….
func Example() {
	h, err := hub.New(hub.Config{App: "demo"})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sse/demo/connect", func(w http.ResponseWriter, r *http.Request) {
		// A real app authenticates the request; here the query says who it is.
		c, err := h.Connect(r.Context(), hub.ConnectRequest{User: hub.User{ID: r.URL.Query().Get("userId")}})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		h.ServeStream(w, r, c)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer h.Shutdown(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Run(ctx) // heartbeats, lifetimes, QoS redelivery

	// A browser connects; its first event is connect-finish.
	resp, err := http.Get(srv.URL + "/sse/demo/connect?userId=42")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	stream := bufio.NewReader(resp.Body)
	readEvent := func() []string {
		var lines []string
		for {
			line, err := stream.ReadString('\n')
			if err != nil || line == "\n" {
				return lines
			}
			lines = append(lines, strings.TrimSuffix(line, "\n"))
		}
	}
	fmt.Println(readEvent()[2])

	n, err := h.SendByUserID(context.Background(), "42", "greeting", map[string]string{"text": "hello"})
	if err != nil {
		panic(err)
	}
	fmt.Println("delivered to", n, "connection")
	fmt.Println(strings.Join(readEvent(), "\n"))
	// Output:
	// event:connect-finish
	// delivered to 1 connection
	// event:greeting
	// id:1
	// data:{"text":"hello"}
}
