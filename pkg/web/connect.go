package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pushd/pushd/pkg/hub"
)

// errConnectBody is wrapped by connectParams when a POST body is over
// maxCallBody bytes.
var errConnectBody = fmt.Errorf("a POST to /connect takes a body of at most %d bytes", maxCallBody)

// connectParams merges the query (first value of each name) with a JSON
// object body of a POST (at most maxCallBody bytes), body keys winning,
// as the seed server does.
func (h *Handler) connectParams(w http.ResponseWriter, r *http.Request) (map[string]string, error) {
	q := r.URL.Query()
	if len(q["keepaliveTime"]) > 1 {
		return nil, errors.New("keepaliveTime is given more than once")
	}
	params := make(map[string]string, len(q))
	for k, v := range q {
		params[k] = v[0]
	}
	if r.Method != http.MethodPost || r.ContentLength == 0 {
		return params, nil
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return nil, errors.New("a POST to /connect takes a JSON object body")
	}
	var body map[string]any
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxCallBody))
	if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, errConnectBody
		}
		return nil, errors.New("malformed JSON body: " + err.Error())
	}
	for k, v := range body {
		switch v := v.(type) {
		case string:
			params[k] = v
		case nil:
		default:
			b, _ := json.Marshal(v)
			params[k] = string(b)
		}
	}
	return params, nil
}

// serveConnect authenticates, reads the parameters (a POST body within
// the deadline ServeHTTP set) and hands the connection to the hub's
// stream, without read deadline.
func (h *Handler) serveConnect(w http.ResponseWriter, r *http.Request) {
	user, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	params, err := h.connectParams(w, r)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, errConnectBody) {
			status = http.StatusRequestEntityTooLarge
		}
		WriteError(w, status, err.Error())
		return
	}
	if r.Method == http.MethodPost {
		setReadDeadline(w, 0)
	}
	req, err := h.connectRequest(r, params, user)
	if err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Channels, err = h.connectChannels(r, user, params); err != nil {
		channelError(w, err)
		return
	}
	h.detach(&req)
	c, err := h.hub.Connect(r.Context(), req)
	if err != nil {
		hubError(w, err)
		return
	}
	h.hub.ServeStream(w, r, c)
}

// connectRequest reads the seed client's connect parameters; the
// connection keeps the telemetry of the allowlists, without credentials.
func (h *Handler) connectRequest(r *http.Request, p map[string]string, user hub.User) (hub.ConnectRequest, error) {
	var bad []string
	num := func(name string) int64 {
		v, ok := p[name]
		if !ok || v == "" || v == "undefined" || v == "null" {
			return 0
		}
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(n) || n < math.MinInt64 || n >= math.MaxInt64 {
			bad = append(bad, name)
			return 0
		}
		return int64(n)
	}
	req := hub.ConnectRequest{
		User:            user,
		SessionDuration: num("sessionDuration"),
		CanAck:          p["ack"] == "1" || p["ack"] == "true",
		LastEventID:     r.Header.Get("Last-Event-ID"),
	}
	if v := p["lastEventId"]; v != "" {
		req.LastEventID = v
	}
	if v, ok := p["keepaliveTime"]; ok && v != "" {
		ms := num("keepaliveTime")
		if ms <= 0 {
			req.Keepalive = -1
		} else {
			req.Keepalive = time.Duration(min(ms, math.MaxInt64/int64(time.Millisecond))) * time.Millisecond
		}
	}
	if l := p["listeners"]; l != "" {
		req.Listeners = strings.Split(l, ",")
	}
	params, headers := h.secrets.telemetry(r, p, &h.shared)
	req.Info = hub.ClientInfo{
		ClientID:               params["clientId"],
		ClientVersion:          params["clientVersion"],
		ClientInstanceID:       params["clientInstanceId"],
		ClientInstanceTime:     num("clientInstanceTime"),
		ClientImportModuleTime: num("clientImportModuleTime"),
		AccessTime:             num("accessTime"),
		Screen:                 params["screen"],
		LocationHref:           params["locationHref"],
		JSHeapSizeLimit:        num("jsHeapSizeLimit"),
		TotalJSHeapSize:        num("totalJSHeapSize"),
		UsedJSHeapSize:         num("usedJSHeapSize"),
		RequestIP:              requestIP(r),
		RequestDomain:          h.shared.get(requestDomain(r)),
		UserAgent:              headers["User-Agent"],
		Params:                 params,
		Headers:                headers,
	}
	if len(bad) > 0 {
		return req, errors.New("not a number: " + strings.Join(bad, ", "))
	}
	return req, nil
}

// requestIP is the first X-Forwarded-For hop, else the peer address.
func requestIP(r *http.Request) string {
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		first, _, _ := strings.Cut(xff, ",")
		if first = strings.TrimSpace(first); first != "" && !strings.EqualFold(first, "unknown") {
			return first
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// requestDomain is scheme://host of the request, as the browser saw it.
func requestDomain(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// detach makes the strings an open connection keeps its own: most are
// substrings of the request line or header values, which they would keep
// alive as long as the connection lives. Names many connections share
// (tenant, channels, listeners) are interned; the telemetry and the domain
// already are (connectRequest).
func (h *Handler) detach(req *hub.ConnectRequest) {
	u := &req.User
	u.ID, u.Name, u.AccessToken = strings.Clone(u.ID), strings.Clone(u.Name), strings.Clone(u.AccessToken)
	u.TenantID = h.shared.get(u.TenantID)
	for i, ch := range req.Channels {
		req.Channels[i] = h.shared.get(ch)
	}
	for i, l := range req.Listeners {
		req.Listeners[i] = h.shared.get(l)
	}
	req.LastEventID = strings.Clone(req.LastEventID)
	req.Info.RequestIP = strings.Clone(req.Info.RequestIP)
}

// Bounds of an interner: a string longer than maxSharedLen is copied, not
// shared, and tables holding maxSharedBytes are replaced by empty ones
// (what they held stays with the connections that hold it).
const (
	maxSharedLen   = 1 << 10
	maxSharedBytes = 1 << 20
)

// interner keeps one copy of what many open connections hold alike:
// telemetry values (User-Agent, Accept-Language, clientVersion …) and
// header sets, the request domain, tenants, channel and event names.
// Values unique to a connection pass through it too, so its tables are
// bounded by size. Its zero value is ready.
type interner struct {
	mu    sync.Mutex
	strs  map[string]string
	maps  map[string]map[string]string // by names and values joined with NULs
	bytes int                          // of the keys of both tables
}

// get returns the table's copy of s, adding a copy of s if it has none.
func (t *interner) get(s string) string {
	if s == "" {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.getLocked(s)
}

func (t *interner) getLocked(s string) string {
	if len(s) > maxSharedLen {
		return strings.Clone(s)
	}
	if v, ok := t.strs[s]; ok {
		return v
	}
	t.reserve(len(s))
	v := strings.Clone(s)
	t.strs[v] = v
	return v
}

// fields returns the map of pairs (name, value, name, value …), the same
// map for every call with the same pairs; nil for none. Callers must not
// change it.
func (t *interner) fields(pairs []string) map[string]string {
	if len(pairs) == 0 {
		return nil
	}
	key := strings.Join(pairs, "\x00")
	t.mu.Lock()
	defer t.mu.Unlock()
	if m, ok := t.maps[key]; ok {
		return m
	}
	m := make(map[string]string, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		m[pairs[i]] = t.getLocked(pairs[i+1])
	}
	t.reserve(len(key))
	t.maps[key] = m
	return m
}

// reserve makes room for n more bytes of keys, starting empty tables
// when they would go over maxSharedBytes.
func (t *interner) reserve(n int) {
	if t.strs == nil || t.bytes+n > maxSharedBytes {
		t.strs, t.maps, t.bytes = map[string]string{}, map[string]map[string]string{}, 0
	}
	t.bytes += n
}
