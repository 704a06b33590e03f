package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	configFile := flag.String("config", "", "YAML configuration file (default: the embedded demo)")
	listen := flag.String("listen", "", "listen address, e.g. :8080 (overrides listen and PUSHD_LISTEN)")
	flag.Parse()
	env := os.Environ()
	if *listen != "" {
		env = append(env, "PUSHD_LISTEN="+*listen)
	}
	cfg, err := loadConfig(*configFile, env)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pushd:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch {
	case os.Getenv("GOGC") != "":
	case cfg.GCPercent > 0:
		debug.SetGCPercent(cfg.GCPercent)
	default:
		go newGCTuner().Run(ctx)
	}
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "pushd:", err)
		os.Exit(1)
	}
}
