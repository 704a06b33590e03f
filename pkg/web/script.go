package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// moduleExport is the statement that ends sse.js, on a line of its own.
const moduleExport = "export default Sse"

// classicScript derives the classic form of the client module: the module
// up to its final export statement, which a plain <script> cannot parse.
// The class stays reachable as window.Sse, which the module sets itself.
func classicScript(module []byte) ([]byte, error) {
	body, ok := bytes.CutSuffix(bytes.TrimRight(module, " \t\r\n;"), []byte(moduleExport))
	if !ok || !bytes.HasSuffix(body, []byte("\n")) {
		return nil, fmt.Errorf("web: sse.js does not end with %q on a line of its own", moduleExport)
	}
	return body, nil
}

// asset is a file served under the base path: the client script or its
// types, kept plain and gzip-compressed (made once, in New), each with its
// own strong ETag.
type asset struct {
	contentType       string
	plain, gzipped    []byte
	plainTag, gzipTag string
}

// newAsset compresses body and computes the ETags of both encodings.
func newAsset(contentType string, body []byte) (*asset, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("web: gzip: %w", err)
	}
	if _, err := zw.Write(body); err != nil {
		return nil, fmt.Errorf("web: gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("web: gzip: %w", err)
	}
	sum := sha256.Sum256(body)
	tag := hex.EncodeToString(sum[:12])
	return &asset{
		contentType: contentType,
		plain:       body,
		gzipped:     buf.Bytes(),
		plainTag:    `"` + tag + `"`,
		gzipTag:     `"` + tag + `-gzip"`,
	}, nil
}

// serve answers the asset in the encoding the request accepts. Caches
// store it but revalidate every use (no-cache): If-None-Match with the
// ETag gets 304 without a body, so a cached page load costs one small
// round trip.
func (a *asset) serve(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-cache")
	hdr.Add("Vary", "Accept-Encoding")
	body, tag := a.plain, a.plainTag
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		body, tag = a.gzipped, a.gzipTag
		hdr.Set("Content-Encoding", "gzip")
	}
	hdr.Set("ETag", tag)
	if noneMatch(r.Header.Get("If-None-Match"), tag) {
		hdr.Del("Content-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// noneMatch reports whether an If-None-Match header names tag (compared
// weakly, RFC 9110 13.1.2) or is "*".
func noneMatch(header, tag string) bool {
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == tag || t == "*" {
			return true
		}
	}
	return false
}

// acceptsGzip reads an Accept-Encoding header (RFC 9110 12.5.3): gzip (or
// x-gzip) is accepted when listed, or covered by *, with a quality above
// 0; a malformed quality counts as 0.
func acceptsGzip(header string) bool {
	star := false
	for part := range strings.SplitSeq(header, ",") {
		name, params, _ := strings.Cut(part, ";")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "gzip", "x-gzip":
			return positiveQuality(params)
		case "*":
			star = positiveQuality(params)
		}
	}
	return star
}

// positiveQuality reports whether the parameters of one Accept-Encoding
// entry leave its quality above 0 (no q means 1).
func positiveQuality(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && q > 0
		}
	}
	return true
}
