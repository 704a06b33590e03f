// A backend's use of pushd's server API through a client generated from the
// contract: openapi-typescript turns api/openapi.yaml into schema.d.ts, and
// openapi-fetch makes typed calls with it. Paths, parameters, bodies and
// answers are checked by tsc against the contract.
//
//   node dist/example.js <pushd URL> <app> <API key> <user id>
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type SendResult = components["schemas"]["SendResult"];

const [baseUrl, app, key, userId] = process.argv.slice(2);
const pushd = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${key}` } });
const path = { app };

const sent = await pushd.POST("/api/v1/apps/{app}/send", {
  params: { path },
  body: { to: { userIds: [userId] }, event: "bell", data: { count: 1 } },
});
// 200 answers a result (an array for a batch), 202 an async send's id.
if (sent.error || sent.data === undefined || Array.isArray(sent.data) || !("delivered" in sent.data)) {
  throw new Error(`send: ${sent.response.status} ${JSON.stringify(sent.error ?? sent.data)}`);
}
const result: SendResult = sent.data;

const online = await pushd.GET("/api/v1/apps/{app}/online", { params: { path, query: { userId } } });
const users = await pushd.GET("/api/v1/apps/{app}/users", { params: { path, query: { pageSize: 10 } } });
const connections = await pushd.GET("/api/v1/apps/{app}/connections", { params: { path, query: { userId } } });

// An error comes back typed too: {"error": "…"} with its status.
const refused = await pushd.POST("/api/v1/apps/{app}/send", {
  params: { path },
  body: { to: { listening: true }, event: "bell" },
});

console.log(JSON.stringify({
  delivered: result.delivered,
  online: online.data?.online,
  users: users.data?.list.map((u) => u.id),
  listeners: connections.data?.list[0]?.listeners,
  refused: { status: refused.response.status, error: refused.error?.error },
}));
