package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // the server or a command failed while running; pushd health: not ready
	exitUsage  = 2 // bad arguments or configuration
)

// errUsage marks a command-line error: the message was printed with the
// usage, exit 2.
var errUsage = errors.New("usage")

// configError marks an invalid configuration: exit 2.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

// command is one subcommand of pushd.
type command struct {
	name    string
	args    string // the arguments, for the usage line
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "[--config FILE] [--listen ADDR]", "run the server (the default; without --config: the embedded demo)", runServe},
		{"version", "", "print the version", runVersion},
		{"genconfig", "[--cluster redis|nacos]", "print a commented starter configuration with fresh secrets", runGenconfig},
		{"checkconfig", "FILE", "check a configuration file; every problem on stderr, exit 0 or 2", runCheckconfig},
		{"gentoken", "--config FILE --app NAME --user ID [--tenant ID] [--ttl 1h]", "print a JWT that the app of that config accepts", runGentoken},
		{"health", "URL", "exit 0 when URL/readyz answers 200 (for container health checks)", runHealth},
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `pushd pushes Server-Sent Events to browsers.

Usage:
  pushd [serve] [--config FILE] [--listen ADDR]
  pushd COMMAND [arguments]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %s\n      %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	fmt.Fprint(w, `
Configuration: a YAML file (--config FILE; "pushd genconfig" writes a starter). Without one,
pushd runs the embedded demo on 127.0.0.1:8080: app "demo" at /sse/demo, API key demo-key,
demo page at /, admin page at /admin/ (token demo-admin).

Every key can be overridden by an environment variable: PUSHD_ and the key's path in upper
case, list items by index, lists comma-separated — PUSHD_LISTEN=:8080, PUSHD_LOG_LEVEL=debug,
PUSHD_QOS_REPOSITORY=redis, PUSHD_APPS_0_AUTH_MODE=jwt. Shortcuts: PUSHD_API_KEY (the first
app's API keys), PUSHD_REDIS_URL (the QoS and cluster Redis URLs). A PUSHD_ variable that names
no key is ignored with a warning naming the nearest valid one.
`)
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

// dispatch runs the command named by args and returns the exit code.
func dispatch(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	name := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		name, args = args[0], args[1:]
	}
	if name == "help" || (len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") && name == "serve") {
		usage(stdout)
		return exitOK
	}
	if name == "serve" && len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		name, args = "version", args[1:]
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		err := c.run(ctx, args, stdout, stderr)
		var cfgErr configError
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.Is(err, errUsage):
			return exitUsage
		case errors.As(err, &cfgErr):
			fmt.Fprintln(stderr, "pushd:", err)
			return exitUsage
		default:
			fmt.Fprintln(stderr, "pushd:", err)
			return exitFailed
		}
	}
	fmt.Fprintf(stderr, "pushd: unknown command %q\n\n", name)
	usage(stderr)
	return exitUsage
}

// newFlags returns a flag set for a subcommand that prints its own usage.
func newFlags(name, args string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("pushd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: pushd %s %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args and refuses positional arguments beyond want.
func parse(fs *flag.FlagSet, args []string, want int) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() != want {
		if fs.NArg() > want {
			fmt.Fprintf(fs.Output(), "pushd: unexpected argument %q\n", fs.Arg(want))
		} else {
			fmt.Fprintln(fs.Output(), "pushd: missing argument")
		}
		fs.Usage()
		return errUsage
	}
	return nil
}

func runServe(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlags("serve", "[--config FILE] [--listen ADDR]", stderr)
	configFile := fs.String("config", "", "YAML configuration file (default: the embedded demo)")
	listen := fs.String("listen", "", "listen address, e.g. :8080 (overrides listen and PUSHD_LISTEN)")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	env := os.Environ()
	if *listen != "" {
		env = append(env, "PUSHD_LISTEN="+*listen)
	}
	cfg, err := loadConfig(*configFile, env)
	if err != nil {
		return configError{err}
	}
	switch {
	case os.Getenv("GOGC") != "":
	case cfg.GCPercent > 0:
		debug.SetGCPercent(cfg.GCPercent)
	default:
		go newGCTuner().Run(ctx)
	}
	return run(ctx, cfg)
}
