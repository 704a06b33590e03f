package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if os.Getenv(workerEnv) == "1" {
		os.Exit(workerMain(os.Stdin, os.Stdout))
	}
	if spec := os.Getenv(delayProxyEnv); spec != "" {
		os.Exit(delayProxyMain(spec, os.Stdin, os.Stdout))
	}
	os.Exit(mainWithArgs(os.Args[1:], os.Stdout, os.Stderr))
}

// mainWithArgs runs the tool and returns the exit status: 0 when every
// delivery was correct, 1 on a setup error, 2 when a delivery was lost,
// duplicated or misrouted (or a connection failed).
func mainWithArgs(args []string, stdout, stderr io.Writer) int {
	cfg, jsonPath, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "pushbench:", err)
		return 1
	}
	cfg.Log = stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "pushbench:", err)
	}
	rep.WriteTable(stdout)
	if jsonPath != "" {
		b, jerr := json.MarshalIndent(rep, "", "  ")
		if jerr == nil {
			jerr = os.WriteFile(jsonPath, append(b, '\n'), 0o644)
		}
		if jerr != nil {
			fmt.Fprintln(stderr, "pushbench: write json:", jerr)
			return 1
		}
	}
	switch {
	case err != nil:
		return 1
	case !rep.OK():
		return 2
	}
	return 0
}
