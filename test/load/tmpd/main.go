// Throwaway stand-in daemon until cmd/pushd builds. Not committed.
package main

import (
	"context"
	"net/http"
	_ "net/http/pprof"
	"os"

	"github.com/pushd/pushd/pkg/api"
	"github.com/pushd/pushd/pkg/auth"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/qos"
	"github.com/pushd/pushd/pkg/web"
)

func main() {
	repo, err := qos.NewMemory(qos.MemoryConfig{})
	if err != nil {
		panic(err)
	}
	h, err := hub.New(hub.Config{App: "demo", Repository: repo})
	if err != nil {
		panic(err)
	}
	go h.Run(context.Background())
	wh, err := web.New(web.Config{Hub: h, Path: "/sse/demo", Auth: auth.Demo{}})
	if err != nil {
		panic(err)
	}
	ah, err := api.New(api.Config{Apps: map[string]api.App{"demo": {Hub: h, Keys: []string{os.Getenv("PUSHD_API_KEY")}}}})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/sse/demo/", wh)
	mux.Handle("/sse/demo", wh)
	mux.Handle("/api/", ah)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	mux.Handle("/debug/", http.DefaultServeMux)
	panic(http.ListenAndServe(os.Getenv("PUSHD_LISTEN"), mux))
}
