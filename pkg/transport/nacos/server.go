package nacos

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/pushd/pushd/internal/httpx"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/signature"
	"github.com/rs/zerolog"
)

// peerServer is the inbound side of the peer API: it authenticates
// requests and hands them to the hub.Handler.
type peerServer struct {
	t *Transport
	h hub.Handler
}

func (s *peerServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := s.t
	method := http.MethodPost
	switch r.URL.Path {
	case PathDeliver, PathSurvey:
	case PathLink:
		if t.cfg.PerRequestHTTP {
			httpx.WriteError(w, http.StatusNotFound, "not found") // as a node before links
			return
		}
		method = http.MethodGet
	default:
		httpx.WriteError(w, http.StatusNotFound, "not found")
		return
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		httpx.WriteError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	// Nothing of the body is read before the headers are authentic: they
	// sign its length and hash.
	if r.ContentLength < 0 {
		httpx.WriteError(w, http.StatusLengthRequired, "content length required")
		return
	}
	if r.ContentLength > t.cfg.MaxBodyBytes {
		httpx.WriteError(w, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	from, nonce := r.Header.Get(headerFrom), r.Header.Get(headerNonce)
	log := t.log.With().Str("peer", from).Str("remote", r.RemoteAddr).Str("op", r.URL.Path).Logger()
	ts, sum, ok := s.authenticateHeaders(w, r, log)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, t.cfg.MaxBodyBytes))
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "read body")
		return
	}
	if t.sign != nil {
		if signature.BodySHA256(body) != sum {
			log.Warn().Err(errBodyHash).Msg("peer request rejected")
			httpx.WriteError(w, http.StatusUnauthorized, "unauthorized")
			return
		}
		if err := t.nonces.Add(nonce, ts.Add(t.cfg.ReplayWindow), time.Now()); err != nil {
			if errors.Is(err, signature.ErrReplayCacheFull) {
				log.Warn().Err(err).Msg("peer request refused")
				httpx.WriteError(w, http.StatusServiceUnavailable, "busy")
				return
			}
			log.Warn().Err(err).Msg("peer request rejected")
			httpx.WriteError(w, http.StatusUnauthorized, "unauthorized")
			return
		}
	}
	if r.URL.Path == PathLink {
		s.acceptLink(w, r, from, nonce, log)
		return
	}

	t.served.http.Add(1)
	ctx, cancel := context.WithTimeout(r.Context(), t.cfg.Timeout)
	defer cancel()
	var reply any
	switch r.URL.Path {
	case PathDeliver:
		var in deliverBody
		if err := json.Unmarshal(body, &in); err != nil {
			httpx.WriteError(w, http.StatusBadRequest, "bad json")
			return
		}
		if err := in.Event.Validate(); err != nil {
			httpx.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		rep := serveRequest(ctx, s.h, &linkRequest{app: in.App, target: in.Target, deliver: true, event: in.Event})
		reply = deliverReply{Count: rep.Count}
	case PathSurvey:
		var in surveyBody
		if err := json.Unmarshal(body, &in); err != nil {
			httpx.WriteError(w, http.StatusBadRequest, "bad json")
			return
		}
		rep := serveRequest(ctx, s.h, &linkRequest{app: in.App, request: in.Request})
		rep.NodeID = t.self.NodeID
		reply = rep
	}
	out, err := json.Marshal(reply)
	if err != nil {
		log.Error().Err(err).Msg("encode peer reply")
		httpx.WriteError(w, http.StatusInternalServerError, "encode reply")
		return
	}
	t.sign.signReply(w.Header(), nonce, t.self.NodeID, http.StatusOK, out)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// authenticateHeaders checks the signature, timestamp and addressing of a
// request before its body is read; when they fail it answers and returns
// !ok. It returns the signed timestamp and body hash.
func (s *peerServer) authenticateHeaders(w http.ResponseWriter, r *http.Request, log zerolog.Logger) (time.Time, string, bool) {
	t := s.t
	ts, sum, err := t.sign.verifyRequest(r, time.Now(), t.notBefore, t.cfg.ReplayWindow)
	if err != nil {
		log.Warn().Err(err).Msg("peer request rejected")
		httpx.WriteError(w, http.StatusUnauthorized, "unauthorized")
		return ts, sum, false
	}
	if to := r.Header.Get(headerTo); to != t.self.NodeID {
		// Signed for another node: a stale registry entry or a static list
		// naming the wrong node at this address.
		log.Warn().Str("to", to).Msg("peer request for another node")
		httpx.WriteError(w, http.StatusMisdirectedRequest, "this is node "+t.self.NodeID)
		return ts, sum, false
	}
	if r.Header.Get(headerFrom) == t.self.NodeID {
		httpx.WriteError(w, http.StatusConflict, "request from this node to itself")
		return ts, sum, false
	}
	return ts, sum, true
}
