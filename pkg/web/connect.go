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
	params, headers := h.secrets.telemetry(r, p)
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
		RequestDomain:          requestDomain(r),
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
