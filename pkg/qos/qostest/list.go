package qostest

import (
	"fmt"
	"testing"

	"github.com/pushd/pushd/pkg/qos"
)

func testListFiltersAndPaging(t *testing.T, r qos.Repository) {
	a := msg("ev1", "u1")
	b := msg("ev2", "u1", "u2")
	c := msg("ev1")
	c.TenantIDs = []string{"t1"}
	d := msg("ev1")
	d.Channels = []string{"c1"}
	e := msg("ev2")
	e.AccessTokens = []string{"tok"}
	f := msg("ev3")
	f.All = true
	save(t, r, app, a, b, c, d, e, f)
	cases := []struct {
		f    qos.Filter
		want []qos.Message
	}{
		{qos.Filter{}, []qos.Message{a, b, c, d, e, f}},
		{qos.Filter{UserID: "u1"}, []qos.Message{a, b}},
		{qos.Filter{UserID: "u2"}, []qos.Message{b}},
		{qos.Filter{Event: "ev1"}, []qos.Message{a, c, d}},
		{qos.Filter{TenantID: "t1"}, []qos.Message{c}},
		{qos.Filter{Channel: "c1"}, []qos.Message{d}},
		{qos.Filter{AccessToken: "tok"}, []qos.Message{e}},
		{qos.Filter{UserID: "u1", Event: "ev2"}, []qos.Message{b}},
		{qos.Filter{UserID: "nobody"}, nil},
	}
	for _, tc := range cases {
		got, total := list(t, r, app, tc.f, 0, 0)
		wantIDs(t, fmt.Sprintf("List %+v", tc.f), got, ids(tc.want)...)
		wantN(t, fmt.Sprintf("List %+v total", tc.f), total, len(tc.want))
	}
	all := ids([]qos.Message{a, b, c, d, e, f})
	for _, p := range []struct{ offset, limit int }{{0, 2}, {2, 2}, {4, 2}, {5, 10}, {6, 2}, {100, 1}} {
		got, total := list(t, r, app, qos.Filter{}, p.offset, p.limit)
		want := all[min(p.offset, len(all)):min(p.offset+p.limit, len(all))]
		wantIDs(t, fmt.Sprintf("List page %+v", p), got, want...)
		wantN(t, fmt.Sprintf("List page %+v total", p), total, len(all))
	}
	got, total := list(t, r, app, qos.Filter{Event: "ev1"}, 1, 1)
	wantIDs(t, "List ev1 page 2", got, c.ID)
	wantN(t, "List ev1 page 2 total", total, 3)
}
