// VerifyPushd is a backend endpoint for pushd that verifies, with the JDK
// only, every request pushd signs (scheme v2, see pkg/signature/doc.go):
// the browser messages and uploads pushd forwards (upstream.url) and the
// presence hooks it sends (hooks.url).
//
// Run it (Java 17 or later, no build step):
//
//	PUSHD_SECRET=… [PUSHD_HOOKS_SECRET=…] java VerifyPushd.java [PORT]
//	java VerifyPushd.java --selftest
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
// the browser. Copy Signature and NonceCache into your service and call
// verify where your handler starts.
import com.sun.net.httpserver.Headers;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.StringJoiner;
import java.util.concurrent.Executors;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public final class VerifyPushd {
    /** How far a timestamp may lie from this server's clock, either way. */
    static final long WINDOW_SECONDS = 60;
    /** The largest body read, as pushd's upstream.max_body default. */
    static final int MAX_BODY = 10 << 20;
    /** The most nonces remembered at once; more are refused with 503. */
    static final int MAX_NONCES = 100_000;
    /** The path upstream.url and hooks.url point under. */
    static final String BASE = "/pushd";

    public static void main(String[] args) throws IOException {
        selfTest();
        if (args.length > 0 && args[0].equals("--selftest")) {
            System.out.println("selftest ok");
            return;
        }
        String secret = System.getenv("PUSHD_SECRET");
        if (secret == null || secret.isEmpty()) {
            System.err.println("set PUSHD_SECRET to the app's upstream.secret");
            System.exit(2);
        }
        String hooksSecret = System.getenv("PUSHD_HOOKS_SECRET");
        if (hooksSecret == null || hooksSecret.isEmpty()) {
            hooksSecret = secret;
        }
        int port = args.length > 0 ? Integer.parseInt(args[0]) : 8090;

        NonceCache nonces = new NonceCache();
        Verifier upstream = new Verifier(secret, nonces);
        Verifier hooks = new Verifier(hooksSecret, nonces);
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 0);
        server.setExecutor(Executors.newFixedThreadPool(16));
        server.createContext("/", ex -> {
            try (ex) {
                handle(ex, upstream, hooks);
            }
        });
        server.start();
        System.out.println("listening " + server.getAddress().getPort());
    }

    static void handle(HttpExchange ex, Verifier upstream, Verifier hooks) throws IOException {
        String path = ex.getRequestURI().getRawPath();
        Headers h = ex.getRequestHeaders();
        try {
            if (!ex.getRequestMethod().equals("POST")) {
                throw new Refused(405, "method not allowed");
            }
            if (path.equals(BASE + "/events")) {
                String event = header(h, "X-Pushd-Event");
                byte[] body = hooks.verify(ex, List.of(event));
                // Your presence handling goes here: body is the event's JSON.
                System.out.println("verified event " + event + " " + new String(body, StandardCharsets.UTF_8));
                reply(ex, 200, json("verified", true, "event", event, "bytes", body.length, "sha256", Signature.sha256Hex(body)));
                return;
            }
            for (String kind : List.of("message", "upload")) {
                String prefix = BASE + "/" + kind + "/";
                if (!path.startsWith(prefix) || path.length() == prefix.length()) {
                    continue;
                }
                String app = header(h, "X-Pushd-App"), user = header(h, "X-Pushd-User-Id");
                String tenant = header(h, "X-Pushd-Tenant-Id"), conn = header(h, "X-Pushd-Connection-Id");
                byte[] body = upstream.verify(ex, List.of(app, user, tenant, conn));
                // Your business logic goes here: user of tenant, on connection
                // conn of app, sent body to message/{name} or upload/{name}.
                String name = path.substring(prefix.length());
                System.out.println("verified " + kind + "/" + name + " user=" + user + " connection=" + conn);
                reply(ex, 200, json("verified", true, "kind", kind, "path", name, "app", app, "userId", user,
                        "tenantId", tenant, "connectionId", conn, "bytes", body.length, "sha256", Signature.sha256Hex(body)));
                return;
            }
            throw new Refused(404, "not found");
        } catch (Refused r) {
            System.out.println("refused " + path + ": " + r.getMessage());
            reply(ex, r.status, json("error", r.getMessage()));
        }
    }

    /** header returns the request header's value, "" when absent. */
    static String header(Headers h, String name) {
        String v = h.getFirst(name);
        return v == null ? "" : v;
    }

    static void reply(HttpExchange ex, int status, String json) throws IOException {
        byte[] b = (json + "\n").getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(status, b.length);
        ex.getResponseBody().write(b);
    }

    /** json writes a flat JSON object of key, value pairs (strings, numbers, booleans). */
    static String json(Object... kv) {
        StringJoiner out = new StringJoiner(",", "{", "}");
        for (int i = 0; i + 1 < kv.length; i += 2) {
            Object v = kv[i + 1];
            out.add(quote(kv[i].toString()) + ":" + (v instanceof String s ? quote(s) : String.valueOf(v)));
        }
        return out.toString();
    }

    static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c < 0x20) {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.append('"').toString();
    }

    /** Refused is a request that failed verification, with the status to answer. */
    static final class Refused extends Exception {
        final int status;

        Refused(int status, String reason) {
            super(reason, null, false, false);
            this.status = status;
        }
    }

    /** Verifier takes the five steps of pkg/signature/doc.go for one secret. */
    static final class Verifier {
        private final String secret;
        private final NonceCache nonces;

        Verifier(String secret, NonceCache nonces) {
            this.secret = secret;
            this.nonces = nonces;
        }

        /**
         * verify checks ex, signed with extra lines, and returns its body: the
         * headers, the signature, the timestamp, then the body and the nonce.
         */
        byte[] verify(HttpExchange ex, List<String> extra) throws Refused, IOException {
            Headers h = ex.getRequestHeaders();
            String ts = header(h, "X-Pushd-Timestamp"), nonce = header(h, "X-Pushd-Nonce");
            String sha = header(h, "X-Pushd-Content-Sha256"), sig = header(h, "X-Pushd-Signature");
            if (ts.isEmpty() || nonce.isEmpty() || sha.isEmpty() || sig.isEmpty()) {
                throw new Refused(401, "missing signature headers");
            }
            URI uri = ex.getRequestURI();
            String want;
            try {
                want = Signature.sign(secret, Signature.canonical(ex.getRequestMethod(), uri.getRawPath(),
                        uri.getRawQuery(), sha, ts, nonce, extra));
            } catch (IllegalArgumentException e) { // a malformed query or value: not what pushd signed
                throw new Refused(401, "bad signature");
            }
            if (!MessageDigest.isEqual(want.getBytes(StandardCharsets.UTF_8), sig.getBytes(StandardCharsets.UTF_8))) {
                throw new Refused(401, "bad signature");
            }
            long now = Instant.now().getEpochSecond();
            if (!ts.matches("[0-9]{1,18}") || Long.parseLong(ts) < now - WINDOW_SECONDS || Long.parseLong(ts) > now + WINDOW_SECONDS) {
                throw new Refused(401, "timestamp outside window");
            }
            byte[] body = ex.getRequestBody().readNBytes(MAX_BODY + 1);
            if (body.length > MAX_BODY) {
                throw new Refused(413, "body too large");
            }
            if (!MessageDigest.isEqual(Signature.sha256Hex(body).getBytes(StandardCharsets.UTF_8), sha.getBytes(StandardCharsets.UTF_8))) {
                throw new Refused(401, "body does not match its hash");
            }
            nonces.add(nonce, now);
            return body;
        }
    }

    /**
     * NonceCache remembers accepted nonces for twice the window after their
     * acceptance, which covers the window past any accepted timestamp. With
     * several instances of a backend, keep them in a shared store instead
     * (Redis: SET pushd:nonce:<nonce> 1 NX EX 120).
     */
    static final class NonceCache {
        private final LinkedHashMap<String, Long> forgetAt = new LinkedHashMap<>(); // in acceptance order

        synchronized void add(String nonce, long now) throws Refused {
            Iterator<Long> it = forgetAt.values().iterator();
            while (it.hasNext() && it.next() < now) {
                it.remove();
            }
            if (forgetAt.containsKey(nonce)) {
                throw new Refused(401, "nonce already used");
            }
            if (forgetAt.size() >= MAX_NONCES) {
                throw new Refused(503, "nonce cache full");
            }
            forgetAt.put(nonce, now + 2 * WINDOW_SECONDS);
        }
    }

    /** Signature builds the canonical string of scheme v2 and its HMAC. */
    static final class Signature {
        private static final char[] HEX = "0123456789ABCDEF".toCharArray();

        /** sign returns the X-Pushd-Signature value of canonical: "v2=" and the hex HMAC-SHA256. */
        static String sign(String secret, String canonical) {
            try {
                Mac mac = Mac.getInstance("HmacSHA256");
                mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
                return "v2=" + HexFormat.of().formatHex(mac.doFinal(canonical.getBytes(StandardCharsets.UTF_8)));
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException("HmacSHA256 unavailable", e);
            }
        }

        static String sha256Hex(byte[] b) {
            try {
                return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException("SHA-256 unavailable", e);
            }
        }

        /** canonical joins the signed lines with "\n"; rawQuery may be null. */
        static String canonical(String method, String rawPath, String rawQuery, String sha, String ts, String nonce, List<String> extra) {
            List<String> lines = new ArrayList<>(List.of("pushd-v2", method.toUpperCase(), rawPath,
                    canonicalQuery(rawQuery == null ? "" : rawQuery), sha, ts, nonce));
            lines.addAll(extra);
            for (String l : lines) {
                if (l.indexOf('\n') >= 0 || l.indexOf('\r') >= 0) {
                    throw new IllegalArgumentException("line break in a signed value");
                }
            }
            return String.join("\n", lines);
        }

        /** canonicalQuery decodes each key and value as a form does, encodes them byte by byte, sorts by key. */
        static String canonicalQuery(String raw) {
            List<String[]> pairs = new ArrayList<>();
            for (String piece : raw.split("&")) {
                if (piece.isEmpty()) {
                    continue;
                }
                int eq = piece.indexOf('=');
                String k = eq < 0 ? piece : piece.substring(0, eq), v = eq < 0 ? "" : piece.substring(eq + 1);
                pairs.add(new String[] {encode(decode(k)), encode(decode(v))});
            }
            pairs.sort(Comparator.comparing(p -> p[0])); // List.sort is stable
            StringJoiner out = new StringJoiner("&");
            for (String[] p : pairs) {
                out.add(p[0] + "=" + p[1]);
            }
            return out.toString();
        }

        /** decode undoes form encoding: "+" is a space, %XX a byte. */
        static byte[] decode(String s) {
            byte[] in = s.getBytes(StandardCharsets.UTF_8);
            ByteArrayOutputStream out = new ByteArrayOutputStream(in.length);
            for (int i = 0; i < in.length; i++) {
                if (in[i] == '+') {
                    out.write(' ');
                } else if (in[i] != '%') {
                    out.write(in[i]);
                } else {
                    int hi = i + 2 < in.length ? Character.digit((char) in[i + 1], 16) : -1;
                    int lo = i + 2 < in.length ? Character.digit((char) in[i + 2], 16) : -1;
                    if (hi < 0 || lo < 0) {
                        throw new IllegalArgumentException("malformed %-escape");
                    }
                    out.write(hi << 4 | lo);
                    i += 2;
                }
            }
            return out.toByteArray();
        }

        /** encode keeps A-Z a-z 0-9 - . _ ~ and writes every other byte as %XX. */
        static String encode(byte[] b) {
            StringBuilder out = new StringBuilder();
            for (byte x : b) {
                int c = x & 0xff;
                if (c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
                    out.append((char) c);
                } else {
                    out.append('%').append(HEX[c >> 4]).append(HEX[c & 15]);
                }
            }
            return out.toString();
        }
    }

    /** selfTest checks the known vector of pkg/signature/doc.go and a harder query. */
    static void selfTest() {
        String query = "x=1&connectionId=c1&a=b+c";
        check("canonical query", "a=b%20c&connectionId=c1&x=1", Signature.canonicalQuery(query));
        String sha = Signature.sha256Hex("{\"text\":\"hi\"}".getBytes(StandardCharsets.UTF_8));
        check("body hash", "e7b995efa755c5ff3b84d2188b58cb4ae916a59470eb3761df8a814f11763500", sha);
        check("signature", "v2=9070d8dc9e6fb12fa456dec81f1795c41b6a776b654d9263ea1b6188af3b998e",
                Signature.sign("secret", Signature.canonical("POST", "/pushd/message/chat", query, sha, "1700000000",
                        "0123456789abcdef0123456789abcdef", List.of("demo", "u1", "t1", "c1"))));
        check("hard query", "=v&a=caf%C3%A9&a=1&b=%FF&flag=&k=x%3Dy%2F&z=it%27s%20%28ok%29%2A%21~",
                Signature.canonicalQuery("z=it's+(ok)*!~&b=%FF&a=caf%C3%A9&a=1&&flag&=v&k=x%3Dy/"));
    }

    static void check(String what, String want, String got) {
        if (!want.equals(got)) {
            System.err.println("selftest: " + what + " is " + got + ", want " + want);
            System.exit(1);
        }
    }
}
