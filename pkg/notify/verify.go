package notify

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/pushd/pushd/pkg/signature"
)

// Verify reads and checks a notification request, for backends written in
// Go, with the scheme of package signature: the signature (secret) over
// the method, path, query, body hash, timestamp, nonce and X-Pushd-Event;
// the timestamp within opts.Window (default 60 s) of opts.Now; only then the
// body (at most 64 KiB, or opts.MaxBody when smaller) against its hash;
// with opts.Replay (share one signature.ReplayCache between all requests)
// that the nonce is new. Errors wrap the signature package's errors or
// ErrInvalid.
func Verify(r *http.Request, secret string, opts signature.Options) (Event, error) {
	if opts.MaxBody <= 0 || opts.MaxBody > maxEventBody {
		opts.MaxBody = maxEventBody
	}
	typ := r.Header.Get(HeaderEvent)
	body, err := signature.VerifyRequest(r, secret, opts, typ)
	if err != nil {
		return Event{}, fmt.Errorf("notify: %w", err)
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if ev.Type == "" || ev.Type != typ {
		return Event{}, fmt.Errorf("%w: type %q, %s %q", ErrInvalid, ev.Type, HeaderEvent, typ)
	}
	return ev, nil
}
