// Package signature owns the HMAC-SHA256 scheme pushd uses to sign the HTTP
// requests it makes to an app's backend: forwarded browser messages and
// uploads (package upstream) and presence notifications (package notify).
// The signature binds the request's method, path, query, body, time and a
// one-time nonce, so a captured request cannot be replayed onto another
// call, after its window, or (with a ReplayCache) twice.
//
// # Headers
//
//	X-Pushd-Timestamp:      <Unix time in seconds, decimal>
//	X-Pushd-Nonce:          <32 lower-case hex characters, random per request>
//	X-Pushd-Content-Sha256: <lower-case hex SHA-256 of the body as sent; of "" when empty>
//	X-Pushd-Signature:      v2=<lower-case hex HMAC-SHA256(secret, canonical)>
//
// # Canonical string
//
// The HMAC key is the UTF-8 bytes of the shared secret. canonical is these
// lines joined by a single "\n" (no "\n" after the last one, no "\r"):
//
//	pushd-v2
//	<method, upper case: POST>
//	<path as on the request line, percent-encoding kept, without query>
//	<canonical query, see below; an empty line when there is none>
//	<X-Pushd-Content-Sha256>
//	<X-Pushd-Timestamp>
//	<X-Pushd-Nonce>
//	<extra lines defined by the caller>
//
// The extra lines are, for package upstream, the values of X-Pushd-App,
// X-Pushd-User-Id, X-Pushd-Tenant-Id and X-Pushd-Connection-Id (four
// lines, empty ones included); for package notify, the value of
// X-Pushd-Event (one line).
//
// The canonical query is made from the raw query string (after "?"): split
// it at "&" and drop empty pieces; split each piece at its first "=" (no
// "=": the value is empty); decode key and value as a form does ("+" is a
// space, %XX a byte); encode each again byte by byte, keeping A-Z a-z 0-9
// - . _ ~ and writing every other byte as "%" and two upper-case hex
// digits; sort the pairs by encoded key with a stable sort (pairs with the
// same key keep their order); join them as key=value with "&". Example:
// "x=1&connectionId=c1&a=b+c" → "a=b%20c&connectionId=c1&x=1".
//
// # Verifying
//
// A backend in any language, for each request:
//
//  1. takes the four headers; if one is missing, refuses;
//  2. builds canonical from its request's method, path and raw query and
//     the headers, computes the HMAC and compares it with the hex after
//     "v2=" in constant time (Java MessageDigest.isEqual, Node
//     crypto.timingSafeEqual, Python hmac.compare_digest); refuses on a
//     mismatch;
//  3. refuses a timestamp more than 60 seconds from its clock (either way);
//  4. reads the body and refuses it unless its SHA-256 equals
//     X-Pushd-Content-Sha256;
//  5. refuses a nonce it accepted before, and otherwise remembers it for
//     at least the window past the timestamp (pushd never reuses one).
//
// The path is the one pushd requested: a proxy between pushd and the
// backend must not rewrite it (or the backend must verify with the original
// one). In Python, with the query q and the body b:
//
//	pairs = []
//	for piece in q.split("&"):
//	    if piece:
//	        k, _, v = piece.partition("=")
//	        pairs.append((quote(unquote_plus(k), safe="~"), quote(unquote_plus(v), safe="~")))
//	pairs.sort(key=lambda p: p[0])            # stable
//	query = "&".join(k + "=" + v for k, v in pairs)
//	canonical = "\n".join(["pushd-v2", method, path, query, h["X-Pushd-Content-Sha256"],
//	                       h["X-Pushd-Timestamp"], h["X-Pushd-Nonce"], *extra])
//	mac = hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()
//	ok = hmac.compare_digest("v2=" + mac, h["X-Pushd-Signature"]) and \
//	     hashlib.sha256(b).hexdigest() == h["X-Pushd-Content-Sha256"]
//
// (quote, unquote_plus from urllib.parse). In Node, encodeURIComponent
// leaves ! ' ( ) * unencoded: also replace them by %21 %27 %28 %29 %2A. In
// Java, URLEncoder.encode(s, UTF_8) writes a space as "+" and keeps "*":
// replace "+" by "%20", "*" by "%2A" and "%7E" by "~".
//
// Known vector: secret "secret", POST /pushd/message/chat?x=1&connectionId=c1&a=b+c,
// body {"text":"hi"} (sha256 e7b995efa755c5ff3b84d2188b58cb4ae916a59470eb3761df8a814f11763500),
// timestamp 1700000000, nonce 0123456789abcdef0123456789abcdef, extra lines
// demo, u1, t1, c1 → X-Pushd-Signature
// v2=9070d8dc9e6fb12fa456dec81f1795c41b6a776b654d9263ea1b6188af3b998e.
//
// # In Go
//
// SignRequest signs an outgoing request; VerifyRequest takes the five steps
// (the body is read only once the headers passed, so an unsigned request
// costs nothing); ReplayCache is the bounded nonce memory of step 5.
//
// # Concurrency
//
// Every function is safe for concurrent use, and so is a ReplayCache; the
// package holds no other state.
package signature
