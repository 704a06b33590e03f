package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/pushd/pushd/pkg/hub"
)

// Client calls the API of one app.
type Client struct {
	base string
	key  string
	http *http.Client
}

// Config configures a Client.
type Config struct {
	// URL is pushd's address, e.g. "http://pushd:8080". Required.
	URL string
	// App is the app's name. Required.
	App string
	// APIKey is one of the app's API keys. Required.
	APIKey string
	// HTTPClient makes the calls. Default http.DefaultClient.
	HTTPClient *http.Client
}

// New builds a Client.
func New(cfg Config) (*Client, error) {
	if cfg.URL == "" || cfg.App == "" || cfg.APIKey == "" {
		return nil, errors.New("client: URL, App and APIKey are required")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	return &Client{
		base: strings.TrimSuffix(cfg.URL, "/") + "/api/v1/apps/" + url.PathEscape(cfg.App) + "/",
		key:  cfg.APIKey,
		http: cfg.HTTPClient,
	}, nil
}

// Error is an answer of the API other than 2xx.
type Error struct {
	Status  int
	Message string
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("client: pushd answered %d: %s", e.Status, e.Message)
}

// Message is one event to send.
type Message struct {
	// To addresses the recipients.
	To hub.Target `json:"to"`
	// Event is the event name.
	Event string `json:"event"`
	// Data is the payload: a string is sent as is, anything else as JSON.
	Data any `json:"data"`
	// QoS stores the event until the recipients acknowledge it.
	QoS bool `json:"qos,omitempty"`
	// TTL bounds how long a QoS event waits, e.g. "24h".
	TTL string `json:"ttl,omitempty"`
	// Async asks pushd to answer at once (202) and send in the background.
	Async bool `json:"async,omitempty"`
}

// Send sends m and returns how many connections got it, whether it was
// stored, and its id.
func (c *Client) Send(ctx context.Context, m Message) (hub.Result, error) {
	var res hub.Result
	err := c.do(ctx, http.MethodPost, "send", nil, m, &res)
	return res, err
}

// SendToUser sends an event to every connection of userID.
func (c *Client) SendToUser(ctx context.Context, userID, event string, data any) (int, error) {
	res, err := c.Send(ctx, Message{To: hub.Target{UserIDs: []string{userID}}, Event: event, Data: data})
	return res.Delivered, err
}

// Page is one page of a list.
type Page[T any] struct {
	Total int `json:"total"`
	List  []T `json:"list"`
}

// Users lists online users, page from 1.
func (c *Client) Users(ctx context.Context, pageNum, pageSize int) (Page[hub.UserInfo], error) {
	var p Page[hub.UserInfo]
	err := c.do(ctx, http.MethodGet, "users", paging(pageNum, pageSize), nil, &p)
	return p, err
}

// Connections lists connections, optionally of one user.
func (c *Client) Connections(ctx context.Context, userID string, pageNum, pageSize int) (Page[hub.ConnectionInfo], error) {
	q := paging(pageNum, pageSize)
	if userID != "" {
		q.Set("userId", userID)
	}
	var p Page[hub.ConnectionInfo]
	err := c.do(ctx, http.MethodGet, "connections", q, nil, &p)
	return p, err
}

// Stats counts what is online.
func (c *Client) Stats(ctx context.Context) (hub.Stats, error) {
	var st hub.Stats
	err := c.do(ctx, http.MethodGet, "stats", nil, nil, &st)
	return st, err
}

// Disconnect closes the connections of the users, tokens or ids given and
// returns how many were closed.
func (c *Client) Disconnect(ctx context.Context, userIDs, accessTokens, connectionIDs []string) (int, error) {
	var res struct{ Disconnected int }
	err := c.do(ctx, http.MethodPost, "disconnect", nil, map[string][]string{
		"userIds": userIDs, "accessTokens": accessTokens, "connectionIds": connectionIDs}, &res)
	return res.Disconnected, err
}

func paging(pageNum, pageSize int) url.Values {
	q := url.Values{}
	if pageNum > 0 {
		q.Set("pageNum", fmt.Sprint(pageNum))
	}
	if pageSize > 0 {
		q.Set("pageSize", fmt.Sprint(pageSize))
	}
	return q
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("client: encode %s: %w", path, err)
		}
		r = bytes.NewReader(b)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("client: read %s: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		_ = json.Unmarshal(raw, &e)
		return &Error{Status: resp.StatusCode, Message: e.Error}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("client: decode %s: %w", path, err)
	}
	return nil
}
