package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// do sends a request and returns status and body. A call of the server API
// (under /api/) and its answer are checked against the OpenAPI contract.
func do(t testing.TB, method, url, contentType string, body io.Reader, header ...string) (int, string) {
	t.Helper()
	var sent []byte
	if body != nil {
		var err error
		if sent, err = io.ReadAll(body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(sent))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	checkContract(t, req, sent, resp, b)
	return resp.StatusCode, string(b)
}

// apiCall calls the server API of app demo with key demo-key.
func apiCall(t testing.TB, base, method, path string, body any) (int, string) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	return do(t, method, base+"/api/v1/apps/demo/"+path, "application/json", r, "Authorization", "Bearer demo-key")
}

// doOK is do for a request that must answer 200: any other status fails
// the test, so a check of the body cannot pass on an error page.
func doOK(t testing.TB, method, url, contentType string, body io.Reader, header ...string) string {
	t.Helper()
	code, b := do(t, method, url, contentType, body, header...)
	if code != http.StatusOK {
		t.Fatalf("%s %s: %d %s, want 200", method, url, code, b)
	}
	return b
}

// apiJSON calls the server API of app demo and decodes its answer into
// out, failing the test unless it is 200 with a JSON body.
func apiJSON(t testing.TB, base, method, path string, body, out any) {
	t.Helper()
	code, b := apiCall(t, base, method, path, body)
	if err := json.Unmarshal([]byte(b), out); code != http.StatusOK || err != nil {
		t.Fatalf("%s %s: %d %s (%v), want 200 with JSON", method, path, code, b, err)
	}
}

// seedConnectQuery is what an unmodified sse.js 1.2.22 sends on connect,
// in its order, followed by its query option (here the demo identity).
func seedConnectQuery(clientID string) string {
	v := []string{
		"sessionDuration=0", "keepaliveTime=900000", "clientId=" + clientID, "clientVersion=1.2.22",
		"screen=1920x1080", "accessTime=1764120000000", "listeners=myHrBell%2Cnews",
		"useWindowEventBus=true", "locationHref=" + url.QueryEscape("http://localhost:8080/index.html"),
		"clientImportModuleTime=1764120000001", "clientInstanceTime=1764120000002",
		"clientInstanceId=0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f", "jsHeapSizeLimit=4294705152",
		"totalJSHeapSize=10000000", "usedJSHeapSize=9000000", "userId=u1", "tenantId=t1", "name=Ann",
	}
	return strings.Join(v, "&")
}

var connectFinish = regexp.MustCompile(`^id:([A-Za-z0-9_-]{22})\nretry:(?:[5-6]\d\d\d|7[0-4]\d\d|7500)\nevent:connect-finish\n` +
	`data:\{"connectionId":"([A-Za-z0-9_-]{22})","serverTime":\d{13},"reconnectTime":5000,"name":"demo","enableCluster":false,"version":"[0-9.]+"\}\n\n$`)

func wrapped(data string) string {
	return `{"success":true,"code":200,"data":` + data + `,"message":null,"errorMessage":null}` + "\n"
}

// TestSeedClientWire performs over real HTTP exactly the requests an
// unmodified sse.js 1.2.22 makes and checks the frames byte for byte where
// the seed fixes them.
func TestSeedClientWire(t *testing.T) {
	// The embedded demo without history: a connection in no resumable
	// stream gets the seed's counter ids (resume_test.go covers position ids).
	n := startPushd(t, `
apps:
  - name: demo
    auth: {mode: demo}
    api_keys: [demo-key]
    enable_json_endpoints: true
    channels: {namespaces: [{match: "*", join: public}]}
`)
	base := n.url + "/sse/demo"

	// The script, as import(base + '?' + query) loads it.
	resp, err := http.Get(base + "?userId=u1")
	if err != nil {
		t.Fatal(err)
	}
	script, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("module script: %d %v", resp.StatusCode, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/javascript;charset=utf-8" {
		t.Errorf("script content type %q", ct)
	}
	if !bytes.HasSuffix(script, []byte("\nexport default Sse")) || resp.Header.Get("X-Sse-Version") == "" {
		t.Errorf("module script does not end with the default export or lacks X-Sse-Version")
	}
	classic := doOK(t, http.MethodGet, base+"/sse.js?script-type=script", "", nil)
	if !strings.Contains(classic, "Sse") || strings.Contains(classic, "export default") {
		t.Error("classic script contains an export")
	}

	s := openStream(t, base+"/connect?"+seedConnectQuery("11111111-2222-3333-4444-555555555555"))
	if s.resp.StatusCode != 200 || !strings.HasPrefix(s.resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("connect: %d %s", s.resp.StatusCode, s.resp.Header.Get("Content-Type"))
	}
	if s.resp.Header.Get("X-Sse-Server-Id") == "" || s.resp.Header.Get("X-Sse-Version") == "" {
		t.Error("stream lacks X-Sse-Server-Id / X-Sse-Version")
	}
	m := connectFinish.FindStringSubmatch(s.frame())
	if m == nil || m[1] != m[2] {
		t.Fatalf("connect-finish frame not as the seed writes it")
	}
	id := m[1]

	// addListener.do: JSON with the string id, options.query on the URL.
	code, body := do(t, http.MethodPost, base+"/connect/addListener.do?userId=u1&tenantId=t1", "application/json;charset=UTF-8",
		strings.NewReader(`{"connectionId":"`+id+`","listener":["extra"]}`))
	if code != 200 || body != wrapped(`{"listener":["extra","myHrBell","news"]}`) {
		t.Errorf("addListener.do: %d %s", code, body)
	}
	code, body = do(t, http.MethodPost, base+"/connect/removeListener.do?userId=u1&tenantId=t1", "application/json;charset=UTF-8",
		strings.NewReader(`{"connectionId":"`+id+`","listener":["news"]}`))
	if code != 200 || body != wrapped(`{"listener":["extra","myHrBell"]}`) {
		t.Errorf("removeListener.do: %d %s", code, body)
	}

	// A user event pushed by the backend: counter id 1, data split in lines.
	code, body = apiCall(t, n.url, http.MethodPost, "send", map[string]any{
		"to": map[string]any{"userIds": []string{"u1"}}, "event": "myHrBell", "data": "two\nlines"})
	if code != 200 || !strings.Contains(body, `"delivered":1`) {
		t.Fatalf("send: %d %s", code, body)
	}
	if f := s.frame(); f != "event:myHrBell\nid:1\ndata:two\ndata:lines\n\n" {
		t.Errorf("user event frame %q", f)
	}

	// message.do: JSON body, connectionId in the query; the echo backend
	// answers and pushes server-ack to the sender.
	code, body = do(t, http.MethodPost, base+"/connect/message/send1.do?connectionId="+id+"&message=hi&userId=u1&tenantId=t1",
		"application/json;charset=UTF-8", strings.NewReader(`{"a":1}`))
	if code != 200 || !strings.Contains(body, `"path":"send1"`) || !strings.Contains(body, `"body":{"a":1}`) {
		t.Errorf("message.do: %d %s", code, body)
	}
	if f := s.frame(); !strings.HasPrefix(f, "event:server-ack\nid:2\ndata:{") {
		t.Errorf("server-ack frame %q", f)
	}

	// upload.do with a real multipart body.
	var mp bytes.Buffer
	w := multipart.NewWriter(&mp)
	_ = w.WriteField("title", "report")
	fw, _ := w.CreateFormFile("file", "report.txt")
	_, _ = fw.Write(bytes.Repeat([]byte("x"), 1234))
	_ = w.Close()
	code, body = do(t, http.MethodPost, base+"/connect/upload/files.do?connectionId="+id+"&userId=u1&tenantId=t1", w.FormDataContentType(), &mp)
	if code != 200 || !strings.Contains(body, `"files":[{"field":"file","name":"report.txt","size":1234}]`) ||
		!strings.Contains(body, `"fields":{"title":"report"}`) {
		t.Errorf("upload.do: %d %s", code, body)
	}

	// sse-set-duration, pushed by the backend.
	code, body = apiCall(t, n.url, http.MethodPost, "duration", map[string]any{"to": map[string]any{"userIds": []string{"u1"}}, "seconds": 42})
	if code != 200 || !strings.Contains(body, `"reached":1`) {
		t.Errorf("duration: %d %s", code, body)
	}
	if f := s.frame(); f != "event:sse-set-duration\nid:3\ndata:{\"duration\":\"42\"}\n\n" {
		t.Errorf("sse-set-duration frame %q", f)
	}

	// The disconnect beacon: form fields, no credentials.
	form := url.Values{"clientId": {"11111111-2222-3333-4444-555555555555"}, "connectionId": {id}, "reason": {"unload"},
		"sseVersion": {"1.2.22"}, "duration": {"3"}, "sessionDuration": {"60"}}
	code, body = do(t, http.MethodPost, base+"/connect/disconnect.do", "application/x-www-form-urlencoded;charset=UTF-8", strings.NewReader(form.Encode()))
	if code != 200 || body != wrapped(`{"count":1}`) {
		t.Errorf("disconnect.do: %d %s", code, body)
	}
	if f := s.frame(); f != "event:connect-close\nid:4\ndata:{\"connectionId\": \""+id+"\",\"reason\":\"client-close\"}\n\n" {
		t.Errorf("connect-close frame %q", f)
	}
	if !s.ended(5 * time.Second) {
		t.Error("stream did not end after connect-close")
	}
	code, body = do(t, http.MethodPost, base+"/connect/disconnect.do", "application/x-www-form-urlencoded", strings.NewReader("reason=unload"))
	if code != 200 || body != wrapped(`{"count":0}`) {
		t.Errorf("disconnect.do without id: %d %s", code, body)
	}
}

// TestBadInput checks that bad requests get a clear JSON error with the
// right status and leave other users' connections alone.
func TestBadInput(t *testing.T) {
	n := startPushd(t, `
apps:
  - name: demo
    auth: {mode: demo}
    api_keys: [demo-key]
    upstream: {max_body: 4096}
  - name: closed
    auth: {mode: demo}
    api_keys: [closed-key]
`)
	base := n.url + "/sse/demo"
	victim := openStream(t, base+"/connect?userId=victim&clientId=v")
	vid := field(victim.frame(), "id")
	mine := openStream(t, base+"/connect?userId=me")
	myID := field(mine.frame(), "id")

	isJSONError := func(name string, wantCode, code int, body string) {
		t.Helper()
		var e struct{ Error string }
		if code != wantCode || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
			t.Errorf("%s: got %d %q, want %d with a JSON error", name, code, body, wantCode)
		}
	}
	code, body := do(t, http.MethodPost, base+"/connect/addListener.do?userId=me", "application/json", strings.NewReader(`{"connectionId":`))
	isJSONError("malformed JSON", 400, code, body)
	code, body = do(t, http.MethodPost, base+"/connect/message/x.do?userId=me&connectionId="+myID, "application/json",
		strings.NewReader(`{"big":"`+strings.Repeat("x", 5000)+`"}`))
	isJSONError("body over the limit", 413, code, body)
	code, body = do(t, http.MethodPost, base+"/connect/addListener.do?userId=me", "application/json",
		strings.NewReader(`{"connectionId":"`+vid+`","listener":["evil"]}`))
	isJSONError("another user's connection", 404, code, body)
	code, body = do(t, http.MethodPost, base+"/connect/message/x.do?userId=me&connectionId="+vid, "application/json", strings.NewReader(`{}`))
	isJSONError("message over another user's connection", 404, code, body)
	code, body = do(t, http.MethodPost, base+"/connect/addListener.do?userId=me", "application/json",
		strings.NewReader(`{"connectionId":"nope","listener":["a"]}`))
	isJSONError("unknown connection id", 404, code, body)
	code, body = do(t, http.MethodPost, n.url+"/api/v1/apps/demo/send", "application/json",
		strings.NewReader(`{"to":{"all":true},"event":"a","data":1} {"to":{"all":true}}`), "Authorization", "Bearer demo-key")
	isJSONError("data after the JSON body", 400, code, body)
	code, body = apiCall(t, n.url, http.MethodPost, "send", map[string]any{"to": map[string]any{"userIds": []string{""}}, "event": "a", "data": 1})
	isJSONError("a target of empty ids", 400, code, body)
	code, body = do(t, http.MethodPost, base+"/connect/addListener.do?userId=me", "application/json",
		strings.NewReader(`{"connectionId":"`+myID+`","listener":["a"]}x`))
	isJSONError("garbage after the JSON body", 400, code, body)
	code, body = apiCall(t, n.url, http.MethodPost, "send", map[string]any{"to": map[string]any{"all": true}, "event": "a\r\nevent:x", "data": 1})
	isJSONError("event name with CR/LF", 400, code, body)
	code, body = do(t, http.MethodPost, n.url+"/api/v1/apps/demo/send", "application/json", strings.NewReader(`{}`))
	isJSONError("missing API key", 401, code, body)
	code, body = do(t, http.MethodPost, n.url+"/api/v1/apps/demo/send", "application/json", strings.NewReader(`{}`), "Authorization", "Bearer closed-key")
	isJSONError("another app's API key", 401, code, body)
	code, body = do(t, http.MethodGet, n.url+"/sse/closed/connect/connections.json?userId=me", "", nil)
	isJSONError(".json endpoint while disabled", 403, code, body)
	code, body = do(t, http.MethodGet, base+"/connect?userId=me&keepaliveTime=1000&keepaliveTime=2000", "", nil)
	isJSONError("duplicated keepaliveTime", 400, code, body)
	code, body = do(t, http.MethodGet, base+"/connect", "", nil)
	isJSONError("no identity", 401, code, body)
	var mp bytes.Buffer
	w := multipart.NewWriter(&mp)
	_ = w.WriteField("only", "fields")
	_ = w.Close()
	code, body = do(t, http.MethodPost, base+"/connect/upload/x.do?userId=me&connectionId="+myID, w.FormDataContentType(), &mp)
	isJSONError("multipart upload without a file", 400, code, body)
	code, body = do(t, http.MethodPost, base+"/connect/message/..%2F..%2Fadmin.do?userId=me", "application/json", strings.NewReader(`{}`))
	if code == 200 {
		t.Errorf("path traversal accepted: %s", body)
	}

	// The victim's connection is untouched and still receives.
	code, body = apiCall(t, n.url, http.MethodPost, "send", map[string]any{"to": map[string]any{"userIds": []string{"victim"}}, "event": "still", "data": "here"})
	if code != 200 || !strings.Contains(body, `"delivered":1`) {
		t.Fatalf("send to victim: %d %s", code, body)
	}
	if f := victim.frame(); field(f, "event") != "still" {
		t.Errorf("victim got %q", f)
	}
}

// TestDemoAdminPage: the embedded demo serves the admin page with its
// well-known token.
func TestDemoAdminPage(t *testing.T) {
	n := startPushd(t, "")
	openStream(t, n.url+"/sse/demo/connect?userId=watched").frame()
	code, body := do(t, http.MethodGet, n.url+"/admin/api/overview", "", nil, "Authorization", "Bearer demo-admin")
	if code != 200 || !strings.Contains(body, `"usersTotal":1`) || !strings.Contains(body, `"id":"watched"`) {
		t.Fatalf("demo admin overview: %d %s", code, body)
	}
	if code, _ := do(t, http.MethodGet, n.url+"/admin/", "", nil); code != 200 {
		t.Errorf("demo admin page: %d", code)
	}
}

// TestClientCapHolds opens many connections from one browser profile: at
// most the cap stay open, the oldest are told connect-close.
func TestClientCapHolds(t *testing.T) {
	n := startPushd(t, "")
	base := n.url + "/sse/demo/connect?userId=capped&clientId=same-device"
	first := openStream(t, base)
	first.frame()
	const attempts = 300
	for i := range attempts {
		s := openStream(t, base+fmt.Sprintf("&screen=%d", i))
		s.frame()
		s.close()
	}
	if f := first.frame(); field(f, "event") != "connect-close" || !strings.Contains(f, "client-limit") {
		t.Errorf("oldest connection got %q, want connect-close for client-limit", f)
	}
	waitFor(t, 10*time.Second, func() error {
		var page struct{ Total int }
		apiJSON(t, n.url, http.MethodGet, "connections?userId=capped", nil, &page)
		if page.Total > 3 {
			return fmt.Errorf("%d connections of one client id", page.Total)
		}
		return nil
	})
}
