package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/pushd/pushd/pkg/hub"
)

// decodeBodies are send bodies of every shape the decoder meets: each is
// decoded by decodeSend and by encoding/json's strict decoder, which must
// agree.
var decodeBodies = []string{
	`{"to":{"userIds":["u1","u2"]},"event":"e","data":{"a":[1,2]}}`,
	`{"to":{"all":true,"listening":true},"event":"e","data":"text","qos":true,"ttl":"1h","async":false}`,
	` { "to" : { "tenantIds" : [ "t" ] , "channels":["c"],"accessTokens":["k"],"connectionIds":["x"] } , "event" : "e" } `,
	`{"to":null,"event":null,"data":null,"qos":null,"ttl":null,"async":null}`,
	`{"to":{"userIds":null},"event":"e"}`,
	`{"to":{"userIds":[null,"u"]},"event":"e"}`,
	`{"event":"a","event":"b","to":{"all":true},"to":{"userIds":["u"]}}`,
	`{"ev\u0065nt":"\u00e9\ud83d\ude00\n\"","to":{"user\u0049ds":["\\u"]}}`,
	`{"event":"` + "\xff\xfe" + `ok"}`,
	`{"event":"\ud800"}`,
	`{"data":"a\"b","to":{"all":false}}`,
	`{"data":"a\\","event":"b\\\\","ttl":"\\\""}`,
	`{"data":["\\\"]\\",{"k\\":"}\\"}],"to":{"userIds":["\\\\\"","x"]}}`,
	`{"event":"same","data":1}`,
	`{"event":"same","data":2}`,
	`{"data":[{"x":"]}"},"}"]}`,
	`{"data":-1.5e3}`,
	`{"data":true}`,
	`{}`,
	`{"bogus":1}`,
	`{"to":{"bogus":1}}`,
	`{"to":{"all":"yes"}}`,
	`{"to":{"userIds":"u"}}`,
	`{"to":{"userIds":[1]}}`,
	`{"to":[]}`,
	`{"to":"u"}`,
	`{"event":1}`,
	`{"qos":"true"}`,
	`{"async":0}`,
	`{"ttl":["1h"]}`,
	`"text"`,
	`12`,
	`null`,
}

// strictDecode is what the API used before: encoding/json refusing
// unknown fields.
func strictDecode(b []byte) (SendRequest, error) {
	var req SendRequest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	return req, err
}

// compareDecoders checks that decodeSend and encoding/json agree on b:
// both refuse it, or both take it to the same SendRequest.
func compareDecoders(t *testing.T, b []byte) {
	t.Helper()
	if !json.Valid(b) || bytes.TrimSpace(b)[0] == '[' {
		return // refused by readBody, or a batch
	}
	want, wantErr := strictDecode(b)
	var got SendRequest
	err := decodeSend(bytes.TrimSpace(b), &got)
	var unknown unknownFieldError
	if wantErr == nil && errors.As(err, &unknown) {
		name := unknown.name[strings.LastIndexByte(unknown.name, '.')+1:]
		for _, f := range []string{"to", "event", "data", "qos", "ttl", "async", "all", "userIds", "accessTokens", "tenantIds", "channels", "connectionIds", "listening"} {
			if strings.EqualFold(name, f) {
				return // encoding/json matches names in any case; pushd does not
			}
		}
	}
	switch {
	case (err == nil) != (wantErr == nil):
		t.Fatalf("%q: decodeSend %v, encoding/json %v", b, err, wantErr)
	case err == nil && !reflect.DeepEqual(got, want):
		t.Fatalf("%q:\n got %+v\nwant %+v", b, got, want)
	}
}

func TestDecodeSendMatchesEncodingJSON(t *testing.T) {
	for _, body := range decodeBodies {
		compareDecoders(t, []byte(body))
	}
}

// FuzzDecodeSend compares decodeSend with encoding/json on any input.
// Run it longer with
//
//	go test -run x -fuzz FuzzDecodeSend -fuzztime 60s ./pkg/api/
func FuzzDecodeSend(f *testing.F) {
	for _, body := range decodeBodies {
		f.Add([]byte(body))
	}
	f.Fuzz(compareDecoders)
}

// TestAnswersMatchMarshal checks the appended answers against
// encoding/json.
func TestAnswersMatchMarshal(t *testing.T) {
	if n := reflect.TypeFor[hub.Result]().NumField(); n != 4 {
		t.Fatalf("hub.Result has %d fields; appendResult writes 4", n)
	}
	for _, res := range []hub.Result{{}, {Delivered: 12, Stored: true, ID: "01J0abc"}, {Delivered: -1, ID: "<&>\"é"},
		{Delivered: 2, Positions: []hub.StreamPos{{Stream: "c:news", Offset: 1 << 40, Epoch: "e<1>"}, {Stream: "u:é", Offset: 1}}}} {
		want, _ := json.Marshal(res)
		if got := appendResult(nil, res); string(got) != string(want) {
			t.Errorf("appendResult: %s; want %s", got, want)
		}
	}
	for _, s := range []string{"", "plain text", `q"b\s`, "<script>&", "tab\tnl\n\x00", "é😀", "\xff", "\u2028"} {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Errorf("appendString(%q): %s; want %s", s, got, want)
		}
	}
	f := &failure{status: 400, msg: `bad "x"`}
	var back BatchItemError
	if err := json.Unmarshal(appendFailure(nil, f), &back); err != nil || back != (BatchItemError{Error: f.msg, Status: f.status}) {
		t.Errorf("appendFailure: %+v %v", back, err)
	}
}
