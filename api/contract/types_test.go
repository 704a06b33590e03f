package contract

import (
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/pushd/pushd/internal/httpx"
	"github.com/pushd/pushd/pkg/api"
	"github.com/pushd/pushd/pkg/client"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/qos"
)

// TestGoTypesMatchSchemas encodes the server's request and answer types
// with every field set and checks them against their schemas both ways: a
// field the contract lacks fails (its objects are closed), and so does a
// property of the contract the type lacks. The end-to-end tests see only
// the fields their answers happen to set; this sees all of them. The Go
// client's copies must fit the contract too, but may leave out what they
// do not read.
func TestGoTypesMatchSchemas(t *testing.T) {
	v, err := New()
	if err != nil {
		t.Fatal(err)
	}
	sendReq := filled[api.SendRequest]()
	sendReq.TTL = "24h"
	itemErr := filled[api.BatchItemError]()
	itemErr.Status = 503
	clientMsg := filled[client.Message]()
	clientMsg.TTL = "90m"
	historyPage := filled[api.HistoryPage]()
	historyPage.Gap = "trimmed"
	clientHistory := filled[client.HistoryPage]()
	clientHistory.Gap = "epoch"
	for _, tc := range []struct {
		schema string
		value  any
		// exact: the type has every property of the schema (the
		// server's own types); else it only must fit (the client's).
		exact bool
	}{
		{"SendRequest", sendReq, true},
		{"Target", filled[hub.Target](), true},
		{"SendResult", filled[hub.Result](), true},
		{"BatchItemError", itemErr, true},
		{"UserInfo", filled[hub.UserInfo](), true},
		{"Identity", filled[hub.User](), true},
		{"ClientInfo", filled[hub.ClientInfo](), true},
		{"ConnectionInfo", filled[hub.ConnectionInfo](), true},
		{"Stats", filled[hub.Stats](), true},
		{"StoredMessage", filled[qos.Message](), true},
		{"UserPage", filled[httpx.Page[hub.UserInfo]](), true},
		{"ConnectionPage", filled[httpx.Page[hub.ConnectionInfo]](), true},
		{"MessagePage", filled[httpx.Page[qos.Message]](), true},
		{"DisconnectRequest", filled[api.DisconnectRequest](), true},
		{"DurationRequest", filled[api.DurationRequest](), true},
		{"SubscribeRequest", filled[api.SubscribeRequest](), true},
		{"ChannelInfo", filled[hub.ChannelInfo](), true},
		{"ChannelPage", filled[httpx.Page[hub.ChannelInfo]](), true},
		{"Presence", filled[api.Presence](), true},
		{"HistoryPage", historyPage, true},

		{"SendRequest", clientMsg, false},
		{"Target", filled[client.Target](), false},
		{"SendResult", filled[client.SendResult](), false},
		{"UserInfo", filled[client.User](), false},
		{"Identity", filled[client.Identity](), false},
		{"ConnectionInfo", filled[client.Connection](), false},
		{"Stats", filled[client.Stats](), false},
		{"StoredMessage", filled[client.StoredMessage](), false},
		{"ChannelInfo", filled[client.Channel](), false},
		{"HistoryPage", clientHistory, false},
	} {
		t.Run(reflect.TypeOf(tc.value).String(), func(t *testing.T) {
			if err := v.CheckValue(tc.schema, tc.value); err != nil {
				t.Fatal(err)
			}
			if !tc.exact {
				return
			}
			b, _ := json.Marshal(tc.value)
			var fields map[string]any
			if err := json.Unmarshal(b, &fields); err != nil {
				t.Fatal(err)
			}
			var got []string
			for k := range fields {
				got = append(got, k)
			}
			sort.Strings(got)
			want := properties(v.doc.Components.Schemas[tc.schema].Value)
			if !slices.Equal(got, want) {
				t.Fatalf("%s has the fields %q, the contract's %s %q", reflect.TypeOf(tc.value), got, tc.schema, want)
			}
		})
	}
}

// properties lists the property names of s and of its allOf parts, sorted.
func properties(s *openapi3.Schema) []string {
	var names []string
	for name := range s.Properties {
		names = append(names, name)
	}
	for _, part := range s.AllOf {
		names = append(names, properties(part.Value)...)
	}
	sort.Strings(names)
	return slices.Compact(names)
}

// filled returns a T with every exported field set to a non-zero value,
// so that no omitempty field is left out of its encoding.
func filled[T any]() T {
	var v T
	fill(reflect.ValueOf(&v).Elem())
	return v
}

var (
	timeType = reflect.TypeFor[time.Time]()
	rawType  = reflect.TypeFor[json.RawMessage]()
)

func fill(v reflect.Value) {
	switch {
	case v.Type() == timeType:
		v.Set(reflect.ValueOf(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)))
		return
	case v.Type() == rawType:
		v.Set(reflect.ValueOf(json.RawMessage(`{"n":1}`)))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Field(i); f.CanSet() {
				fill(f)
			}
		}
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0))
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		key, val := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(key)
		fill(val)
		m.SetMapIndex(key, val)
		v.Set(m)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem())
		v.Set(p)
	case reflect.Interface:
		v.Set(reflect.ValueOf("x"))
	}
}
