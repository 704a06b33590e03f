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
	"strconv"
	"strings"
	"time"
)

// Client calls the API of one app.
type Client struct {
	base      string
	key       string
	http      *http.Client
	retries   int
	retryWait time.Duration
}

// Config configures a Client.
type Config struct {
	// URL is pushd's address, e.g. "http://pushd:8080". Required.
	URL string
	// App is the app's name. Required.
	App string
	// APIKey is one of the app's API keys. Required.
	APIKey string
	// HTTPClient makes the calls. Default http.DefaultClient; bound calls
	// with the ctx of each method.
	HTTPClient *http.Client
	// Retries is how many times a read (users, connections, stats,
	// online, messages, channels, presence) is tried again after a
	// network error or a 502, 503 or 504 answer. Sends, disconnects,
	// duration and channel changes are never retried. Default 2; -1
	// disables retries.
	Retries int
	// RetryWait is the wait before the first retry, doubled before each
	// further one up to 2 s; the ctx bounds the waiting. Default
	// 100 ms.
	RetryWait time.Duration
}

// maxRetryWait bounds the wait between two tries of a read.
const maxRetryWait = 2 * time.Second

// New builds a Client.
func New(cfg Config) (*Client, error) {
	if cfg.URL == "" || cfg.App == "" || cfg.APIKey == "" {
		return nil, errors.New("client: URL, App and APIKey are required")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("client: URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: URL %q: an http or https address is expected", cfg.URL)
	}
	if cfg.Retries < -1 || cfg.RetryWait < 0 {
		return nil, errors.New("client: Retries below -1 or negative RetryWait")
	}
	switch cfg.Retries {
	case 0:
		cfg.Retries = 2
	case -1:
		cfg.Retries = 0
	}
	if cfg.RetryWait == 0 {
		cfg.RetryWait = 100 * time.Millisecond
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	return &Client{
		base:      strings.TrimSuffix(cfg.URL, "/") + "/api/v1/apps/" + url.PathEscape(cfg.App) + "/",
		key:       cfg.APIKey,
		http:      cfg.HTTPClient,
		retries:   cfg.Retries,
		retryWait: cfg.RetryWait,
	}, nil
}

// Send sends m and returns how many connections got it, whether it was
// stored, and its id. It is made once: on an error the event may or may
// not have gone out, and retrying may deliver it twice.
func (c *Client) Send(ctx context.Context, m Message) (SendResult, error) {
	var res SendResult
	status, err := c.call(ctx, http.MethodPost, "send", nil, m, &res)
	res.Accepted = err == nil && status == http.StatusAccepted
	return res, err
}

// SendBatch sends many messages in one call, in order, and returns a
// result per message in the same order: a message pushd refused or could
// not send has Err set, the others went out as with Send. The error is
// for the call as a whole (network, a wrong key, a malformed or too large
// batch: pushd takes at most 1000 messages and 1 MiB per call by
// default); then no message went out, except after a network error, when
// any of them may have. It is made once. An empty batch makes no call.
func (c *Client) SendBatch(ctx context.Context, msgs []Message) ([]BatchResult, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	var items []batchItem
	if _, err := c.call(ctx, http.MethodPost, "send", nil, msgs, &items); err != nil {
		return nil, err
	}
	if len(items) != len(msgs) {
		return nil, fmt.Errorf("client: send: %d results for %d messages", len(items), len(msgs))
	}
	results := make([]BatchResult, len(items))
	for i, it := range items {
		r := &results[i]
		r.Delivered, r.Stored, r.ID = it.Delivered, it.Stored, it.ID
		switch {
		case it.Status == http.StatusAccepted:
			r.Accepted = true
		case it.Status != 0 || it.Error != "":
			r.Err = &APIError{Status: it.Status, Message: it.Error}
		}
	}
	return results, nil
}

// batchItem is one result of a batch send as pushd writes it: a send's
// answer, or "error" and "status" (and "status" 202 for an async send).
type batchItem struct {
	SendResult
	Error  string `json:"error"`
	Status int    `json:"status"`
}

// SendToUser sends an event to every connection of userID and returns
// how many connections got it.
func (c *Client) SendToUser(ctx context.Context, userID, event string, data any) (int, error) {
	return c.sendTo(ctx, Target{UserIDs: []string{userID}}, event, data)
}

// SendToToken sends an event to every connection made with accessToken.
func (c *Client) SendToToken(ctx context.Context, accessToken, event string, data any) (int, error) {
	return c.sendTo(ctx, Target{AccessTokens: []string{accessToken}}, event, data)
}

// SendToTenant sends an event to every connection of tenantID's users.
func (c *Client) SendToTenant(ctx context.Context, tenantID, event string, data any) (int, error) {
	return c.sendTo(ctx, Target{TenantIDs: []string{tenantID}}, event, data)
}

// SendToChannel sends an event to every connection that joined channel.
func (c *Client) SendToChannel(ctx context.Context, channel, event string, data any) (int, error) {
	return c.sendTo(ctx, Target{Channels: []string{channel}}, event, data)
}

// SendToAll sends an event to every connection of the app.
func (c *Client) SendToAll(ctx context.Context, event string, data any) (int, error) {
	return c.sendTo(ctx, Target{All: true}, event, data)
}

func (c *Client) sendTo(ctx context.Context, t Target, event string, data any) (int, error) {
	res, err := c.Send(ctx, Message{To: t, Event: event, Data: data})
	return res.Delivered, err
}

// Users lists online users; pageNum counts from 1.
func (c *Client) Users(ctx context.Context, pageNum, pageSize int) (Page[User], error) {
	return c.SearchUsers(ctx, UsersQuery{PageNum: pageNum, PageSize: pageSize})
}

// SearchUsers lists the online users q selects.
func (c *Client) SearchUsers(ctx context.Context, q UsersQuery) (Page[User], error) {
	var p Page[User]
	v := paging(q.PageNum, q.PageSize)
	set(v, "name", q.Name)
	_, err := c.call(ctx, http.MethodGet, "users", v, nil, &p)
	return p, err
}

// Connections lists connections, of one user unless userID is empty;
// pageNum counts from 1.
func (c *Client) Connections(ctx context.Context, userID string, pageNum, pageSize int) (Page[Connection], error) {
	return c.SearchConnections(ctx, ConnectionsQuery{UserID: userID, PageNum: pageNum, PageSize: pageSize})
}

// SearchConnections lists the connections q selects.
func (c *Client) SearchConnections(ctx context.Context, q ConnectionsQuery) (Page[Connection], error) {
	var p Page[Connection]
	v := paging(q.PageNum, q.PageSize)
	set(v, "id", q.ID)
	set(v, "userId", q.UserID)
	set(v, "clientId", q.ClientID)
	set(v, "name", q.Name)
	_, err := c.call(ctx, http.MethodGet, "connections", v, nil, &p)
	return p, err
}

// Stats counts what is online.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	_, err := c.call(ctx, http.MethodGet, "stats", nil, nil, &st)
	return st, err
}

// Online reports whether userID has a connection on any node.
func (c *Client) Online(ctx context.Context, userID string) (bool, error) {
	var res struct {
		Online bool `json:"online"`
	}
	_, err := c.call(ctx, http.MethodGet, "online", url.Values{"userId": {userID}}, nil, &res)
	return res.Online, err
}

// Disconnect closes the connections of the users, tokens or ids given
// (their clients get connect-close) and returns how many were closed. It
// is made once.
func (c *Client) Disconnect(ctx context.Context, userIDs, accessTokens, connectionIDs []string) (int, error) {
	req := struct {
		UserIDs       []string `json:"userIds,omitempty"`
		AccessTokens  []string `json:"accessTokens,omitempty"`
		ConnectionIDs []string `json:"connectionIds,omitempty"`
	}{userIDs, accessTokens, connectionIDs}
	var res struct {
		Disconnected int `json:"disconnected"`
	}
	_, err := c.call(ctx, http.MethodPost, "disconnect", nil, req, &res)
	return res.Disconnected, err
}

// SetDuration sets the online seconds of the connections to addresses
// (their clients get sse-set-duration) and returns how many it reached.
// When it reaches none, pushd keeps the value for the next connection of
// the addressed users or tokens. It is made once.
func (c *Client) SetDuration(ctx context.Context, to Target, seconds int64) (int, error) {
	req := struct {
		To      Target `json:"to"`
		Seconds int64  `json:"seconds"`
	}{to, seconds}
	var res struct {
		Reached int `json:"reached"`
	}
	_, err := c.call(ctx, http.MethodPost, "duration", nil, req, &res)
	return res.Reached, err
}

// Subscribe makes every connection to addresses, on every node, join the
// channels, and returns how many connections' channel sets changed. The
// backend is trusted: no namespace policy applies, only the names and
// the server's bound of channels per connection are checked. It is made
// once; making it again changes nothing more, so it is safe to retry.
func (c *Client) Subscribe(ctx context.Context, to Target, channels ...string) (int, error) {
	return c.subscription(ctx, "subscribe", to, channels)
}

// Unsubscribe makes every connection to addresses, on every node, leave
// the channels, and returns how many connections' channel sets changed.
// It is made once, and is as safe to retry as Subscribe.
func (c *Client) Unsubscribe(ctx context.Context, to Target, channels ...string) (int, error) {
	return c.subscription(ctx, "unsubscribe", to, channels)
}

func (c *Client) subscription(ctx context.Context, path string, to Target, channels []string) (int, error) {
	req := struct {
		To       Target   `json:"to"`
		Channels []string `json:"channels"`
	}{to, channels}
	var res struct {
		Changed int `json:"changed"`
	}
	_, err := c.call(ctx, http.MethodPost, path, nil, req, &res)
	return res.Changed, err
}

// Channels lists the active channels q selects, by name, with their
// connection and user counts.
func (c *Client) Channels(ctx context.Context, q ChannelsQuery) (Page[Channel], error) {
	var p Page[Channel]
	v := paging(q.PageNum, q.PageSize)
	set(v, "prefix", q.Prefix)
	_, err := c.call(ctx, http.MethodGet, "channels", v, nil, &p)
	return p, err
}

// Presence tells who is in channel: its connection count, its users and
// page pageNum (from 1) of its connections. pushd gathers every
// connection of the channel to answer; use Channels for counts alone.
func (c *Client) Presence(ctx context.Context, channel string, pageNum, pageSize int) (Presence, error) {
	var p Presence
	_, err := c.call(ctx, http.MethodGet, "channels/"+url.PathEscape(channel)+"/presence", paging(pageNum, pageSize), nil, &p)
	return p, err
}

// History reads a page of a channel's history after offset after (0: from
// the oldest kept) of epoch (empty: the current one), at most limit events
// (0: pushd's default, 100). A channel that keeps no history is a 404.
func (c *Client) History(ctx context.Context, channel string, after uint64, epoch string, limit int) (HistoryPage, error) {
	var p HistoryPage
	v := url.Values{}
	if after > 0 {
		v.Set("after", strconv.FormatUint(after, 10))
	}
	set(v, "epoch", epoch)
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	_, err := c.call(ctx, http.MethodGet, "channels/"+url.PathEscape(channel)+"/history", v, nil, &p)
	return p, err
}

// Messages lists the QoS backlog q selects, oldest first. Without a QoS
// store pushd answers 501.
func (c *Client) Messages(ctx context.Context, q MessagesQuery) (Page[StoredMessage], error) {
	var p Page[StoredMessage]
	v := paging(q.PageNum, q.PageSize)
	set(v, "userId", q.UserID)
	set(v, "accessToken", q.AccessToken)
	set(v, "tenantId", q.TenantID)
	set(v, "channel", q.Channel)
	set(v, "listeners", q.Event)
	_, err := c.call(ctx, http.MethodGet, "messages", v, nil, &p)
	return p, err
}

func paging(pageNum, pageSize int) url.Values {
	v := url.Values{}
	if pageNum > 0 {
		v.Set("pageNum", strconv.Itoa(pageNum))
	}
	if pageSize > 0 {
		v.Set("pageSize", strconv.Itoa(pageSize))
	}
	return v
}

// set adds a non-empty query parameter.
func set(v url.Values, name, value string) {
	if value != "" {
		v.Set(name, value)
	}
}

// maxAnswer bounds the answers read.
const maxAnswer = 64 << 20

// call makes one API call, decodes a 2xx answer into out and returns its
// status. A GET is tried again as Config.Retries says; anything else is
// made once.
func (c *Client) call(ctx context.Context, method, path string, query url.Values, body, out any) (int, error) {
	var payload []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, fmt.Errorf("client: encode %s: %w", path, err)
		}
		payload = b
	}
	tries := 1
	if method == http.MethodGet {
		tries += c.retries
	}
	wait := c.retryWait
	for try := 1; ; try++ {
		status, again, err := c.once(ctx, method, path, query, payload, out)
		if !again || try == tries {
			return status, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return status, fmt.Errorf("%w (not retried: %w)", err, context.Cause(ctx))
		case <-t.C:
		}
		wait = min(2*wait, maxRetryWait)
	}
}

// once makes one try of a call. again reports a failure worth another
// try of an idempotent call: a network error or a 502, 503 or 504.
func (c *Client) once(ctx context.Context, method, path string, query url.Values, payload []byte, out any) (status int, again bool, err error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var r io.Reader
	if payload != nil {
		r = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return 0, false, fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, ctx.Err() == nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return resp.StatusCode, ctx.Err() == nil, fmt.Errorf("client: read %s: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		switch resp.StatusCode {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			again = true
		}
		return resp.StatusCode, again, &APIError{Status: resp.StatusCode, Message: errorText(resp, raw)}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return resp.StatusCode, false, fmt.Errorf("client: decode %s: %w", path, err)
	}
	return resp.StatusCode, false, nil
}

// maxErrorText bounds the text of a plain-text error answer kept in an
// APIError.
const maxErrorText = 200

// errorText is the message of an error answer: its "error" field, the
// start of a plain-text body (a proxy's answer), or the status text.
func errorText(resp *http.Response, raw []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		return e.Error
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		if text := strings.TrimSpace(string(raw[:min(len(raw), maxErrorText)])); text != "" {
			return strings.ToValidUTF8(text, "")
		}
	}
	return http.StatusText(resp.StatusCode)
}
