package contract_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	openapi "github.com/pushd/pushd/api"
	"github.com/pushd/pushd/api/contract"
)

func validator(t *testing.T) *contract.Validator {
	t.Helper()
	v, err := contract.New()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestCheck shows what Check lets through and what it catches.
func TestCheck(t *testing.T) {
	v := validator(t)
	const send = `{"to":{"userIds":["42"]},"event":"bell","data":{"n":1}}`
	const conn = `{"id":"c1","serverId":"n1","createTime":1,"timeout":0,"messageCount":0,"sessionDuration":0,` +
		`"requestMessageCount":0,"requestUploadCount":0,"listeners":null,"accessUser":{"id":"42"},"canAck":true,"clientId":"b1"%s}`
	page := func(item string) string {
		return `{"total":1,"pageNum":1,"pageSize":100,"timeout":false,"list":[` + item + `]}`
	}
	for _, tc := range []struct {
		name                    string
		method, path, key, sent string
		sentType                string // default application/json
		status                  int
		contentType, answer     string
		wantErr                 error // nil: any error at all when bad is set
		bad                     bool
	}{
		{name: "send", method: "POST", path: "/api/v1/apps/demo/send", key: "k", sent: send,
			status: 200, answer: `{"delivered":1,"stored":false}`},
		{name: "qos send", method: "POST", path: "/api/v1/apps/demo/send", key: "k",
			sent:   `{"to":{"tenantIds":["acme"],"listening":true},"event":"n","data":"x","qos":true,"ttl":"24h"}`,
			status: 200, answer: `{"delivered":0,"stored":true,"id":"0Jx7cQm2Rk6Yb8Lw4Tn1Aa"}`},
		{name: "batch", method: "POST", path: "/api/v1/apps/demo/send", key: "k", sent: "[" + send + "," + send + "," + send + "]",
			status: 200, answer: `[{"delivered":1,"stored":false},{"error":"hub: qos store unavailable","status":503},{"id":"x","status":202}]`},
		{name: "batch with refused items", method: "POST", path: "/api/v1/apps/demo/send", key: "k", sent: "[" + send + `,1,{"to":{"all":true},"event":"e","x":1}]`,
			status: 200, answer: `[{"delivered":1,"stored":false},{"error":"a JSON object is expected","status":400},{"error":"unknown field \"x\"","status":400}]`},
		{name: "streamed batch", method: "POST", path: "/api/v1/apps/demo/send", key: "k", sentType: contract.NDJSON,
			sent:   send + "\n\n{\n" + `{"to":{"userIds":[""]},"event":"e"}` + "\n" + `{"to":{"all":true},"event":"e","async":true}`,
			status: 200, contentType: contract.NDJSON,
			answer: `{"delivered":1,"stored":false}` + "\n" + `{"error":"malformed JSON","status":400}` + "\n" +
				`{"error":"to: the target addresses nobody","status":400}` + "\n" + `{"id":"x","status":202}` + "\n"},
		{name: "async", method: "POST", path: "/api/v1/apps/demo/send", key: "k", sent: `{"to":{"all":true},"event":"e","data":null,"async":true}`,
			status: 202, answer: `{"id":"x"}`},
		{name: "refused bad request", method: "POST", path: "/api/v1/apps/demo/send", key: "k", sent: `{"to":{"userIds":[""]},"event":"e"}`,
			status: 400, answer: `{"error":"to: the target addresses nobody"}`},
		{name: "refused missing key", method: "GET", path: "/api/v1/apps/demo/stats",
			status: 401, answer: `{"error":"missing API key: send Authorization: Bearer <key>"}`},
		{name: "connections", method: "GET", path: "/api/v1/apps/demo/connections?userId=42&pageSize=10", key: "k",
			status: 200, answer: page(strings.Replace(conn, "%s", "", 1))},
		{name: "the contract", method: "GET", path: "/api/v1/openapi.yaml", status: 200, contentType: "application/yaml",
			answer: string(openapi.Spec)},

		{name: "unknown path", method: "GET", path: "/api/v1/apps/demo/nope", key: "k",
			status: 404, answer: `{"error":"no such API endpoint"}`, bad: true, wantErr: contract.ErrUnknownOperation},
		{name: "unknown method", method: "DELETE", path: "/api/v1/apps/demo/send", key: "k",
			status: 404, answer: `{"error":"no such API endpoint"}`, bad: true, wantErr: contract.ErrUnknownOperation},
		{name: "accepted bad request", method: "POST", path: "/api/v1/apps/demo/send", key: "k", sent: `{"to":{"all":true},"event":"a\r\nb"}`,
			status: 200, answer: `{"delivered":1,"stored":false}`, bad: true, wantErr: contract.ErrAcceptedInvalid},
		{name: "accepted unknown field", method: "POST", path: "/api/v1/apps/demo/send", key: "k", sent: `{"to":{"all":true},"event":"a","extra":1}`,
			status: 200, answer: `{"delivered":1,"stored":false}`, bad: true, wantErr: contract.ErrAcceptedInvalid},
		{name: "batch item accepted", method: "POST", path: "/api/v1/apps/demo/send", key: "k", sent: "[" + send + `,{"to":{"all":true},"event":"e","x":1}]`,
			status: 200, answer: `[{"delivered":1,"stored":false},{"delivered":1,"stored":false}]`, bad: true, wantErr: contract.ErrAcceptedInvalid},
		{name: "batch item unanswered", method: "POST", path: "/api/v1/apps/demo/send", key: "k", sent: "[" + send + `,1]`,
			status: 200, answer: `[{"delivered":1,"stored":false}]`, bad: true, wantErr: contract.ErrAcceptedInvalid},
		{name: "batch accepted without key", method: "POST", path: "/api/v1/apps/demo/send", sent: "[" + send + `,1]`,
			status: 200, answer: `[{"delivered":1,"stored":false},{"error":"a JSON object is expected","status":400}]`, bad: true, wantErr: contract.ErrAcceptedInvalid},
		{name: "batch item error without status", method: "POST", path: "/api/v1/apps/demo/send", key: "k", sent: "[" + send + "]",
			status: 200, answer: `[{"error":"x"}]`, bad: true},
		{name: "streamed item accepted", method: "POST", path: "/api/v1/apps/demo/send", key: "k", sentType: contract.NDJSON,
			sent: send + "\n{\n", status: 200, contentType: contract.NDJSON,
			answer: `{"delivered":1,"stored":false}` + "\n" + `{"delivered":1,"stored":false}` + "\n", bad: true, wantErr: contract.ErrAcceptedInvalid},
		{name: "streamed answer with an undocumented field", method: "POST", path: "/api/v1/apps/demo/send", key: "k", sentType: contract.NDJSON,
			sent: send + "\n", status: 200, contentType: contract.NDJSON, answer: `{"delivered":1,"stored":false,"queued":1}` + "\n", bad: true},
		{name: "streamed answer not JSON", method: "POST", path: "/api/v1/apps/demo/send", key: "k", sentType: contract.NDJSON,
			sent: send + "\n", status: 200, contentType: contract.NDJSON, answer: "ok\n", bad: true},
		{name: "accepted without key", method: "GET", path: "/api/v1/apps/demo/stats",
			status: 200, answer: `{"connections":0,"users":0,"accessTokens":0,"tenants":0}`, bad: true, wantErr: contract.ErrAcceptedInvalid},
		{name: "answer with an undocumented field", method: "POST", path: "/api/v1/apps/demo/send", key: "k", sent: send,
			status: 200, answer: `{"delivered":1,"stored":false,"queued":1}`, bad: true},
		{name: "answer missing a field", method: "GET", path: "/api/v1/apps/demo/stats", key: "k",
			status: 200, answer: `{"connections":0,"users":0,"accessTokens":0}`, bad: true},
		{name: "connection with an undocumented field", method: "GET", path: "/api/v1/apps/demo/connections", key: "k",
			status: 200, answer: page(strings.Replace(conn, "%s", `,"secret":"x"`, 1)), bad: true},
		{name: "undocumented status", method: "GET", path: "/api/v1/apps/demo/users", key: "k",
			status: 400, answer: `{"error":"x"}`, bad: true},
		{name: "error not in the error shape", method: "POST", path: "/api/v1/apps/demo/send", key: "k", sent: `{}`,
			status: 400, answer: `{"message":"x"}`, bad: true},
		{name: "not JSON", method: "GET", path: "/api/v1/apps/demo/stats", key: "k",
			status: 200, contentType: "text/plain", answer: `connections 0`, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, "http://127.0.0.1:8080"+tc.path, nil)
			if tc.sent != "" {
				req.Header.Set("Content-Type", cmp.Or(tc.sentType, "application/json"))
			}
			if tc.key != "" {
				req.Header.Set("Authorization", "Bearer "+tc.key)
			}
			ct := cmp.Or(tc.contentType, "application/json")
			_, err := v.Check(context.Background(), contract.Exchange{Request: req, RequestBody: []byte(tc.sent),
				Status: tc.status, Header: http.Header{"Content-Type": {ct}}, Body: []byte(tc.answer)})
			switch {
			case !tc.bad && err != nil:
				t.Fatalf("want no error, got %v", err)
			case tc.bad && err == nil:
				t.Fatal("want an error, got none")
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("want %v, got %v", tc.wantErr, err)
			}
		})
	}
}

// TestHandler serves the embedded contract, without a key.
func TestHandler(t *testing.T) {
	srv := httptest.NewServer(openapi.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + openapi.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/yaml" || !bytes.Equal(body, openapi.Spec) {
		t.Fatalf("%d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	if !bytes.HasPrefix(body, []byte("openapi: 3.1.")) {
		t.Fatalf("not an OpenAPI 3.1 document: %.40q", body)
	}
}
