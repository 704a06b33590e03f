"""A backend endpoint for pushd that verifies, with Python's standard library
only, every request pushd signs (scheme v2, see pkg/signature/doc.go): the
browser messages and uploads pushd forwards (upstream.url) and the presence
hooks it sends (hooks.url).

Run it (Python 3.8 or later, no dependencies):

    PUSHD_SECRET=… [PUSHD_HOOKS_SECRET=…] python3 verify_pushd.py [PORT]
    python3 verify_pushd.py --selftest

and point pushd at it:

    upstream: {url: http://127.0.0.1:PORT/pushd, secret: <PUSHD_SECRET>}
    hooks:    {url: http://127.0.0.1:PORT/pushd/events, secret: <PUSHD_HOOKS_SECRET or PUSHD_SECRET>}

PORT defaults to 8090 (0 picks a free one); it listens on 127.0.0.1 and
prints "listening PORT" once ready. A verified request is answered 200 with
{"verified":true,...}, a refused one 401 (411, 413, 503) with {"error":...};
pushd passes the answer to a message or upload back to the browser. Copy
canonical, sign, verify and NonceCache into your service (in Flask or
Django, pass request.method, request.path and the raw query string) and
call verify first.
"""

import hashlib
import hmac
import json
import os
import re
import sys
import threading
import time
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote_from_bytes, unquote_to_bytes

WINDOW_SECONDS = 60  # how far a timestamp may lie from this server's clock, either way
MAX_BODY = 10 << 20  # the largest body read, as pushd's upstream.max_body default
MAX_NONCES = 100_000  # the most nonces remembered at once; more are refused with 503
BASE = "/pushd"  # the path upstream.url and hooks.url point under

_MALFORMED_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class Refused(Exception):
    """A request that failed verification, with the status to answer."""

    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status


def _recode(s):
    """Decodes s as a form does ("+" a space, %XX a byte) and encodes it byte
    by byte, keeping A-Z a-z 0-9 - . _ ~."""
    if _MALFORMED_ESCAPE.search(s):
        raise ValueError("malformed %-escape")
    return quote_from_bytes(unquote_to_bytes(s.replace("+", " ")), safe="")


def canonical_query(raw):
    """The query's pairs recoded and sorted by key (stable)."""
    pairs = []
    for piece in raw.split("&"):
        if piece:
            k, _, v = piece.partition("=")
            pairs.append((_recode(k), _recode(v)))
    pairs.sort(key=lambda p: p[0])
    return "&".join(k + "=" + v for k, v in pairs)


def canonical(method, path, raw_query, sha, ts, nonce, extra):
    """The signed lines joined with "\\n"."""
    lines = ["pushd-v2", method.upper(), path, canonical_query(raw_query), sha, ts, nonce, *extra]
    if any("\n" in l or "\r" in l for l in lines):
        raise ValueError("line break in a signed value")
    return "\n".join(lines)


def sign(secret, canonical_string):
    """The X-Pushd-Signature value of canonical_string: "v2=" and the hex HMAC-SHA256."""
    return "v2=" + hmac.new(secret.encode(), canonical_string.encode(), hashlib.sha256).hexdigest()


class NonceCache:
    """Remembers accepted nonces for twice the window after their acceptance,
    which covers the window past any accepted timestamp. With several
    instances of a backend, keep them in a shared store instead (Redis:
    SET pushd:nonce:<nonce> 1 NX EX 120)."""

    def __init__(self):
        self._forget_at = OrderedDict()  # in acceptance order
        self._lock = threading.Lock()

    def add(self, nonce, now):
        with self._lock:
            while self._forget_at and next(iter(self._forget_at.values())) < now:
                self._forget_at.popitem(last=False)
            if nonce in self._forget_at:
                raise Refused(401, "nonce already used")
            if len(self._forget_at) >= MAX_NONCES:
                raise Refused(503, "nonce cache full")
            self._forget_at[nonce] = now + 2 * WINDOW_SECONDS


def verify(method, target, headers, read_body, secret, nonces, extra):
    """Checks a request (target as on the request line, headers case-insensitive,
    read_body() its body) signed with secret and the extra lines, and returns the
    body: the headers, the signature, the timestamp, then the body and the nonce
    (pkg/signature/doc.go, "Verifying")."""
    ts, nonce, sha, sig = (headers.get(h) or "" for h in (
        "X-Pushd-Timestamp", "X-Pushd-Nonce", "X-Pushd-Content-Sha256", "X-Pushd-Signature"))
    if not (ts and nonce and sha and sig):
        raise Refused(401, "missing signature headers")
    path, _, raw_query = target.partition("?")
    try:
        want = sign(secret, canonical(method, path, raw_query, sha, ts, nonce, extra))
    except ValueError:  # a malformed query or value: not what pushd signed
        raise Refused(401, "bad signature") from None
    if not hmac.compare_digest(want.encode(), sig.encode()):
        raise Refused(401, "bad signature")
    now = int(time.time())
    if not re.fullmatch(r"[0-9]{1,18}", ts) or abs(now - int(ts)) > WINDOW_SECONDS:
        raise Refused(401, "timestamp outside window")
    body = read_body()
    if not hmac.compare_digest(hashlib.sha256(body).hexdigest().encode(), sha.encode()):
        raise Refused(401, "body does not match its hash")
    nonces.add(nonce, now)
    return body


class Handler(BaseHTTPRequestHandler):
    """Answers pushd's calls; the server sets secrets and nonces."""

    def do_POST(self):
        try:
            answer = self._handle()
            status = 200
        except Refused as r:
            print(f"refused {self.path.partition('?')[0]}: {r}", flush=True)
            answer, status = {"error": str(r)}, r.status
        self._reply(status, answer)

    def do_GET(self):
        self._reply(405, {"error": "method not allowed"})

    do_PUT = do_DELETE = do_PATCH = do_GET

    def _reply(self, status, answer):
        b = (json.dumps(answer) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def _read_body(self):
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise Refused(411, "length required")
        if int(length) > MAX_BODY:
            raise Refused(413, "body too large")
        return self.rfile.read(int(length))

    def _handle(self):
        path = self.path.partition("?")[0]
        h = self.headers
        if path == BASE + "/events":
            event = h.get("X-Pushd-Event") or ""
            body = verify(self.command, self.path, h, self._read_body, self.server.secrets["hooks"],
                          self.server.nonces, [event])
            # Your presence handling goes here: json.loads(body) is the event.
            print(f"verified event {event} {body.decode()}", flush=True)
            return {"verified": True, "event": event, "bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        m = re.fullmatch(re.escape(BASE) + r"/(message|upload)/(.+)", path)
        if not m:
            raise Refused(404, "not found")
        ident = {k: h.get(name) or "" for k, name in (
            ("app", "X-Pushd-App"), ("userId", "X-Pushd-User-Id"),
            ("tenantId", "X-Pushd-Tenant-Id"), ("connectionId", "X-Pushd-Connection-Id"))}
        body = verify(self.command, self.path, h, self._read_body, self.server.secrets["upstream"],
                      self.server.nonces, list(ident.values()))
        # Your business logic goes here: ident["userId"] of ident["tenantId"], on
        # connection ident["connectionId"] of ident["app"], sent body to
        # message/{name} or upload/{name}.
        print(f"verified {m[1]}/{m[2]} user={ident['userId']} connection={ident['connectionId']}", flush=True)
        return {"verified": True, "kind": m[1], "path": m[2], **ident,
                "bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def self_test():
    """Checks the known vector of pkg/signature/doc.go and a harder query."""
    query = "x=1&connectionId=c1&a=b+c"
    sha = hashlib.sha256(b'{"text":"hi"}').hexdigest()
    checks = [
        ("canonical query", "a=b%20c&connectionId=c1&x=1", canonical_query(query)),
        ("body hash", "e7b995efa755c5ff3b84d2188b58cb4ae916a59470eb3761df8a814f11763500", sha),
        ("signature", "v2=9070d8dc9e6fb12fa456dec81f1795c41b6a776b654d9263ea1b6188af3b998e",
         sign("secret", canonical("POST", "/pushd/message/chat", query, sha, "1700000000",
                                  "0123456789abcdef0123456789abcdef", ["demo", "u1", "t1", "c1"]))),
        ("hard query", "=v&a=caf%C3%A9&a=1&b=%FF&flag=&k=x%3Dy%2F&z=it%27s%20%28ok%29%2A%21~",
         canonical_query("z=it's+(ok)*!~&b=%FF&a=caf%C3%A9&a=1&&flag&=v&k=x%3Dy/")),
    ]
    for what, want, got in checks:
        if want != got:
            sys.exit(f"selftest: {what} is {got}, want {want}")


def main():
    self_test()
    if sys.argv[1:2] == ["--selftest"]:
        print("selftest ok")
        return
    upstream = os.environ.get("PUSHD_SECRET")
    if not upstream:
        sys.exit("set PUSHD_SECRET to the app's upstream.secret")
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 8090), Handler)
    server.secrets = {"upstream": upstream, "hooks": os.environ.get("PUSHD_HOOKS_SECRET") or upstream}
    server.nonces = NonceCache()
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
