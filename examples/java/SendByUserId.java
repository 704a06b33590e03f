// SendByUserId pushes an event to a user's browsers through pushd's server
// API with the JDK's java.net.http.HttpClient: the replacement for the Java
// sse-server's localConnectionService.sendByUserId(userId, eventName, body)
// (and distributedConnectionService's), which wrote to the connections of
// the backend's own JVM. pushd delivers across its cluster; the answer
// counts the connections reached, as the library's int did.
//
// Run it (Java 17 or later, no build step):
//
//	PUSHD_API_KEY=demo-key java SendByUserId.java http://localhost:8080 demo 42 myHrBell '{"count":100}'
//
// It prints "delivered N" (N connections of user 42 got the event), or the
// API's error and exits 1. Copy PushdApi into your service and keep one
// instance: its HttpClient pools connections.
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public final class SendByUserId {
    public static void main(String[] args) throws InterruptedException {
        String key = System.getenv("PUSHD_API_KEY");
        if (args.length != 5 || key == null || key.isEmpty()) {
            System.err.println("usage: PUSHD_API_KEY=<one of the app's api_keys> java SendByUserId.java <pushd URL> <app> <userId> <event> <data JSON>");
            System.exit(2);
        }
        PushdApi pushd = new PushdApi(args[0], args[1], key);
        try {
            System.out.println("delivered " + pushd.sendByUserId(args[2], args[3], args[4]));
        } catch (IOException e) {
            System.err.println(e.getMessage());
            System.exit(1);
        }
    }

    /** PushdApi calls one app's send endpoint, POST {pushd}/api/v1/apps/{app}/send. */
    static final class PushdApi {
        private static final Pattern DELIVERED = Pattern.compile("\"delivered\"\\s*:\\s*(\\d+)");

        private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
        private final URI sendUri;
        private final String apiKey;

        PushdApi(String baseUrl, String app, String apiKey) {
            this.sendUri = URI.create(baseUrl.replaceAll("/+$", "") + "/api/v1/apps/" + app + "/send");
            this.apiKey = apiKey;
        }

        /**
         * sendByUserId sends event eventName with data (JSON text: an object,
         * a number, or a string sent as is) to every connection of userId and
         * returns how many were reached, 0 when the user is offline.
         */
        int sendByUserId(String userId, String eventName, String data) throws IOException, InterruptedException {
            return send("{\"userIds\":[" + quote(userId) + "]}", eventName, data);
        }

        /**
         * send sends to the target to, a JSON object such as
         * {"tenantIds":["acme"]}, {"channels":["news"]} or {"all":true} (add
         * "listening":true for the library's *Listening variants). A send is
         * not idempotent, so it is not retried.
         */
        int send(String to, String eventName, String data) throws IOException, InterruptedException {
            String body = "{\"to\":" + to + ",\"event\":" + quote(eventName) + ",\"data\":" + data + "}";
            HttpRequest req = HttpRequest.newBuilder(sendUri)
                    .timeout(Duration.ofSeconds(10))
                    .header("Authorization", "Bearer " + apiKey)
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(body))
                    .build();
            HttpResponse<String> resp = http.send(req, HttpResponse.BodyHandlers.ofString());
            Matcher m = DELIVERED.matcher(resp.body());
            if (resp.statusCode() != 200 || !m.find()) {
                throw new IOException("pushd answered " + resp.statusCode() + ": " + resp.body().strip());
            }
            return Integer.parseInt(m.group(1));
        }

        /** quote writes s as a JSON string. */
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
    }
}
