// verify-pushd.mjs is a backend endpoint for pushd that verifies, with
// Node's built-in modules only, every request pushd signs (scheme v2, see
// pkg/signature/doc.go): the browser messages and uploads pushd forwards
// (upstream.url) and the presence hooks it sends (hooks.url).
//
// Run it (Node 18 or later, no dependencies):
//
//	PUSHD_SECRET=… [PUSHD_HOOKS_SECRET=…] node verify-pushd.mjs [PORT]
//	node verify-pushd.mjs --selftest
//
// and point pushd at it:
//
//	upstream: {url: http://127.0.0.1:PORT/pushd, secret: <PUSHD_SECRET>}
//	hooks:    {url: http://127.0.0.1:PORT/pushd/events, secret: <PUSHD_HOOKS_SECRET or PUSHD_SECRET>}
//
// PORT defaults to 8090 (0 picks a free one); it listens on 127.0.0.1 and
// prints "listening PORT" once ready. A verified request is answered 200
// with {"verified":true,...}, a refused one 401 (413, 503) with
// {"error":"..."}; pushd passes the answer to a message or upload back to
// the browser. Copy canonical, sign, verify and NonceCache into your
// service (an Express handler gets the same req) and call verify first.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';

/** How far a timestamp may lie from this server's clock, either way. */
const WINDOW_SECONDS = 60;
/** The largest body read, as pushd's upstream.max_body default. */
const MAX_BODY = 10 << 20;
/** The most nonces remembered at once; more are refused with 503. */
const MAX_NONCES = 100000;
/** The path upstream.url and hooks.url point under. */
const BASE = '/pushd';

/** Refused is a request that failed verification, with the status to answer. */
class Refused extends Error {
  constructor(status, reason) {
    super(reason);
    this.status = status;
  }
}

/** decode undoes form encoding: "+" is a space, %XX a byte. */
function decode(s) {
  const input = Buffer.from(s, 'utf8');
  const out = [];
  for (let i = 0; i < input.length; i++) {
    if (input[i] === 0x2b) {
      out.push(0x20);
    } else if (input[i] !== 0x25) {
      out.push(input[i]);
    } else {
      const hex = input.subarray(i + 1, i + 3).toString('latin1');
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw new Error('malformed %-escape');
      out.push(parseInt(hex, 16));
      i += 2;
    }
  }
  return Buffer.from(out);
}

/** encode keeps A-Z a-z 0-9 - . _ ~ and writes every other byte as %XX. */
function encode(bytes) {
  let out = '';
  for (const c of bytes) {
    const ch = String.fromCharCode(c);
    out += /[A-Za-z0-9\-._~]/.test(ch) ? ch : '%' + c.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** canonicalQuery decodes each key and value as a form does, encodes them byte by byte, sorts by key. */
export function canonicalQuery(raw) {
  const pairs = [];
  for (const piece of raw.split('&')) {
    if (!piece) continue;
    const eq = piece.indexOf('=');
    const [k, v] = eq < 0 ? [piece, ''] : [piece.slice(0, eq), piece.slice(eq + 1)];
    pairs.push([encode(decode(k)), encode(decode(v))]);
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)); // Array.prototype.sort is stable
  return pairs.map(([k, v]) => k + '=' + v).join('&');
}

/** canonical joins the signed lines with "\n". */
export function canonical(method, path, rawQuery, sha, ts, nonce, extra) {
  const lines = ['pushd-v2', method.toUpperCase(), path, canonicalQuery(rawQuery), sha, ts, nonce, ...extra];
  if (lines.some((l) => /[\r\n]/.test(l))) throw new Error('line break in a signed value');
  return lines.join('\n');
}

/** sign returns the X-Pushd-Signature value of canonical: "v2=" and the hex HMAC-SHA256. */
export function sign(secret, canonicalString) {
  return 'v2=' + createHmac('sha256', secret).update(canonicalString, 'utf8').digest('hex');
}

function sha256Hex(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

function equal(a, b) {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * NonceCache remembers accepted nonces for twice the window after their
 * acceptance, which covers the window past any accepted timestamp. With
 * several instances of a backend, keep them in a shared store instead
 * (Redis: SET pushd:nonce:<nonce> 1 NX EX 120).
 */
export class NonceCache {
  #forgetAt = new Map(); // in acceptance order

  add(nonce, now) {
    for (const [n, at] of this.#forgetAt) {
      if (at >= now) break;
      this.#forgetAt.delete(n);
    }
    if (this.#forgetAt.has(nonce)) throw new Refused(401, 'nonce already used');
    if (this.#forgetAt.size >= MAX_NONCES) throw new Refused(503, 'nonce cache full');
    this.#forgetAt.set(nonce, now + 2 * WINDOW_SECONDS);
  }
}

function header(req, name) {
  const v = req.headers[name.toLowerCase()];
  return typeof v === 'string' ? v : '';
}

async function readBody(req) {
  if (Number(req.headers['content-length']) > MAX_BODY) throw new Refused(413, 'body too large');
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) throw new Refused(413, 'body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * verify checks req, signed with secret and the extra lines, and resolves
 * to its body: the headers, the signature, the timestamp, then the body and
 * the nonce (pkg/signature/doc.go, "Verifying").
 */
export async function verify(req, secret, nonces, extra) {
  const ts = header(req, 'X-Pushd-Timestamp');
  const nonce = header(req, 'X-Pushd-Nonce');
  const sha = header(req, 'X-Pushd-Content-Sha256');
  const sig = header(req, 'X-Pushd-Signature');
  if (!ts || !nonce || !sha || !sig) throw new Refused(401, 'missing signature headers');
  const q = req.url.indexOf('?');
  const [path, rawQuery] = q < 0 ? [req.url, ''] : [req.url.slice(0, q), req.url.slice(q + 1)];
  let want;
  try {
    want = sign(secret, canonical(req.method, path, rawQuery, sha, ts, nonce, extra));
  } catch {
    throw new Refused(401, 'bad signature'); // a malformed query or value: not what pushd signed
  }
  if (!equal(want, sig)) throw new Refused(401, 'bad signature');
  const now = Math.floor(Date.now() / 1000);
  if (!/^[0-9]{1,15}$/.test(ts) || Math.abs(now - Number(ts)) > WINDOW_SECONDS) {
    throw new Refused(401, 'timestamp outside window');
  }
  const body = await readBody(req);
  if (!equal(sha256Hex(body), sha)) throw new Refused(401, 'body does not match its hash');
  nonces.add(nonce, now);
  return body;
}

async function handle(req, secrets, nonces) {
  const path = req.url.split('?')[0];
  if (req.method !== 'POST') throw new Refused(405, 'method not allowed');
  if (path === BASE + '/events') {
    const event = header(req, 'X-Pushd-Event');
    const body = await verify(req, secrets.hooks, nonces, [event]);
    // Your presence handling goes here: body is the event's JSON.
    console.log(`verified event ${event} ${body}`);
    return { verified: true, event, bytes: body.length, sha256: sha256Hex(body) };
  }
  const m = path.match(new RegExp(`^${BASE}/(message|upload)/(.+)$`));
  if (!m) throw new Refused(404, 'not found');
  const id = {
    app: header(req, 'X-Pushd-App'),
    userId: header(req, 'X-Pushd-User-Id'),
    tenantId: header(req, 'X-Pushd-Tenant-Id'),
    connectionId: header(req, 'X-Pushd-Connection-Id'),
  };
  const body = await verify(req, secrets.upstream, nonces, [id.app, id.userId, id.tenantId, id.connectionId]);
  // Your business logic goes here: id.userId of id.tenantId, on connection
  // id.connectionId of id.app, sent body to message/{name} or upload/{name}.
  console.log(`verified ${m[1]}/${m[2]} user=${id.userId} connection=${id.connectionId}`);
  return { verified: true, kind: m[1], path: m[2], ...id, bytes: body.length, sha256: sha256Hex(body) };
}

function reply(res, status, value) {
  const b = Buffer.from(JSON.stringify(value) + '\n');
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': b.length });
  res.end(b);
}

/** selfTest checks the known vector of pkg/signature/doc.go and a harder query. */
function selfTest() {
  const query = 'x=1&connectionId=c1&a=b+c';
  const sha = sha256Hex(Buffer.from('{"text":"hi"}'));
  const checks = [
    ['canonical query', 'a=b%20c&connectionId=c1&x=1', canonicalQuery(query)],
    ['body hash', 'e7b995efa755c5ff3b84d2188b58cb4ae916a59470eb3761df8a814f11763500', sha],
    ['signature', 'v2=9070d8dc9e6fb12fa456dec81f1795c41b6a776b654d9263ea1b6188af3b998e',
      sign('secret', canonical('POST', '/pushd/message/chat', query, sha, '1700000000',
        '0123456789abcdef0123456789abcdef', ['demo', 'u1', 't1', 'c1']))],
    ['hard query', '=v&a=caf%C3%A9&a=1&b=%FF&flag=&k=x%3Dy%2F&z=it%27s%20%28ok%29%2A%21~',
      canonicalQuery("z=it's+(ok)*!~&b=%FF&a=caf%C3%A9&a=1&&flag&=v&k=x%3Dy/")],
  ];
  for (const [what, want, got] of checks) {
    if (want !== got) {
      console.error(`selftest: ${what} is ${got}, want ${want}`);
      process.exit(1);
    }
  }
}

selfTest();
if (process.argv[2] === '--selftest') {
  console.log('selftest ok');
} else {
  const upstream = process.env.PUSHD_SECRET;
  if (!upstream) {
    console.error("set PUSHD_SECRET to the app's upstream.secret");
    process.exit(2);
  }
  const secrets = { upstream, hooks: process.env.PUSHD_HOOKS_SECRET || upstream };
  const nonces = new NonceCache();
  const server = createServer((req, res) => {
    handle(req, secrets, nonces).then(
      (answer) => reply(res, 200, answer),
      (err) => {
        const status = err instanceof Refused ? err.status : 500;
        console.log(`refused ${req.url.split('?')[0]}: ${err.message}`);
        reply(res, status, { error: status === 500 ? 'internal error' : err.message });
      },
    );
  });
  server.listen(Number(process.argv[2] ?? 8090), '127.0.0.1', () => {
    console.log(`listening ${server.address().port}`);
  });
}
