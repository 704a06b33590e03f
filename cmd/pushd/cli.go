package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"text/template"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushd/pushd/pkg/hub"
)

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if err := parse(newFlags("version", "", stderr), args, 0); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pushd %s (%s, %s/%s%s)\n", hub.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH, revision())
	return nil
}

// revision is ", commit abc123" when the binary was built from a checkout.
func revision() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return ", commit " + s.Value[:12]
		}
	}
	return ""
}

func runHealth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("health", "URL", stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := parse(fs, args, 1); err != nil {
		return err
	}
	url := strings.TrimSuffix(fs.Arg(0), "/") + "/readyz"
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return configError{fmt.Errorf("health: %w", err)}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s answered %d: %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	fmt.Fprintln(stdout, "ready")
	return nil
}

func runCheckconfig(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("checkconfig", "FILE", stderr)
	if err := parse(fs, args, 1); err != nil {
		return err
	}
	// The same checks as serve's start, all of them, without contacting
	// any store, registry or peer.
	cfg, err := loadConfigAll(fs.Arg(0), os.Environ())
	if cfg != nil {
		for _, w := range cfg.warnings {
			fmt.Fprintln(stderr, "pushd: warning:", w)
		}
		err = joinProblems(err, checkServer(cfg))
	}
	if err != nil {
		return configError{err}
	}
	fmt.Fprintf(stdout, "%s: ok (%d apps)\n", fs.Arg(0), len(cfg.Apps))
	return nil
}

func runGentoken(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("gentoken", "--config FILE --app NAME --user ID [--tenant ID] [--ttl 1h]", stderr)
	file := fs.String("config", "", "configuration file of the app (required)")
	appName := fs.String("app", "", "app name (default: the first app)")
	user := fs.String("user", "", "user id (required)")
	tenant := fs.String("tenant", "", "tenant id")
	name := fs.String("name", "", "user name")
	ttl := fs.Duration("ttl", time.Hour, "lifetime of the token")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if *file == "" || *user == "" {
		fmt.Fprintln(stderr, "pushd gentoken: --config and --user are required")
		fs.Usage()
		return errUsage
	}
	cfg, err := loadConfig(*file, os.Environ())
	if err != nil {
		return configError{err}
	}
	var app *AppConfig
	for i := range cfg.Apps {
		if *appName == "" || cfg.Apps[i].Name == *appName {
			app = &cfg.Apps[i]
			break
		}
	}
	if app == nil {
		return configError{fmt.Errorf("gentoken: no app %q in %s", *appName, *file)}
	}
	token, err := signToken(app, *user, *tenant, *name, *ttl, time.Now())
	if err != nil {
		return configError{err}
	}
	fmt.Fprintln(stdout, token)
	return nil
}

// signToken makes a JWT that app's authenticator accepts, with the claims
// named as app's configuration names them.
func signToken(app *AppConfig, user, tenant, name string, ttl time.Duration, now time.Time) (string, error) {
	j := app.Auth.JWT
	if app.Auth.Mode != "jwt" {
		return "", fmt.Errorf("gentoken: app %q uses %s authentication, not jwt", app.Name, app.Auth.Mode)
	}
	alg := cmp.Or(j.Algorithm, "HS256")
	if alg != "HS256" || j.Secret == "" {
		return "", fmt.Errorf("gentoken: app %q verifies %s tokens with a public key; pushd can only sign HS256 tokens with the configured secret — sign with your identity provider's private key", app.Name, alg)
	}
	claims := jwt.MapClaims{
		cmp.Or(j.UserClaim, "sub"): user,
		"iat":                      now.Unix(),
		"exp":                      now.Add(ttl).Unix(),
	}
	if tenant != "" {
		claims[cmp.Or(j.TenantClaim, "tenant_id")] = tenant
	}
	if name != "" {
		claims[cmp.Or(j.NameClaim, "name")] = name
	}
	if j.Issuer != "" {
		claims["iss"] = j.Issuer
	}
	if j.Audience != "" {
		claims["aud"] = j.Audience
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(j.Secret))
	if err != nil {
		return "", fmt.Errorf("gentoken: %w", err)
	}
	return token, nil
}

func runGenconfig(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("genconfig", "[--cluster redis|nacos]", stderr)
	cluster := fs.String("cluster", "", "a cluster variant: redis or nacos")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if *cluster != "" && *cluster != "redis" && *cluster != "nacos" {
		fmt.Fprintf(stderr, "pushd genconfig: --cluster %q is not redis or nacos\n", *cluster)
		return errUsage
	}
	secrets := map[string]string{}
	for _, k := range []string{"jwt", "api", "admin", "upstream", "hooks", "cluster"} {
		s, err := randomSecret()
		if err != nil {
			return err
		}
		secrets[k] = s
	}
	return starterConfig.Execute(stdout, map[string]any{"Cluster": *cluster, "Secret": secrets})
}

// randomSecret returns 32 random bytes, URL-safe.
func randomSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", errors.New("genconfig: no randomness: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// starterConfig is what pushd genconfig prints.
var starterConfig = template.Must(template.New("pushd.yaml").Parse(`# pushd configuration — generated by "pushd genconfig"; check it with "pushd checkconfig FILE".
# Every key can be overridden by PUSHD_<PATH> environment variables (PUSHD_LISTEN,
# PUSHD_APPS_0_API_KEYS, …). The secrets below are fresh and random: keep them secret.
listen: ":8080"
log: {level: info, format: auto}   # auto: colours on a terminal, JSON lines otherwise
admin:
  token: "{{.Secret.admin}}"    # the admin page at /admin/
qos:
{{- if .Cluster}}
  repository: redis             # shared by every node, survives restarts
  redis_url: redis://127.0.0.1:6379/0
{{- else}}
  repository: memory            # single node; use redis to survive restarts
{{- end}}
  ttl: 24h
{{- if eq .Cluster "redis"}}
cluster:
  transport: redis
  redis_url: redis://127.0.0.1:6379/0
{{- else if eq .Cluster "nacos"}}
cluster:
  transport: nacos
  secret: "{{.Secret.cluster}}" # the same on every node
  peer_listen: ":7946"
  nacos:
    servers: ["127.0.0.1:8848"]
    group: PUSHD
{{- end}}
apps:
  - name: app
    path: /sse/app              # browsers: import('/sse/app')
    auth:
      mode: jwt
      jwt:
        algorithm: HS256        # "pushd gentoken --config FILE --user 42" makes a token to try it
        secret: "{{.Secret.jwt}}"
        sources: [bearer, "cookie:pushd_token", "query:access_token"]
        user_claim: sub
        tenant_claim: tenant_id
    api_keys: ["{{.Secret.api}}"]   # backends: Authorization: Bearer <key>
    # upstream:                 # browser send()/upload() go to your backend, signed
    #   url: https://backend.internal/pushd
    #   secret: "{{.Secret.upstream}}"
    # hooks:                    # online/offline events, signed
    #   url: https://backend.internal/pushd/presence
    #   secret: "{{.Secret.hooks}}"
    # cors: [https://app.example]   # pages on other origins that may call pushd
    channels:                   # which channels a browser may join (docs/channels.md)
      namespaces:
        - {prefix: "public.", join: public}        # anyone signed in
        - {match: "tenant/{tenant}/*", join: public} # only the user's own tenant
        - {prefix: "team.", join: identity}        # only those the token's "channels" claim grants
`))
