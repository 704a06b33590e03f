package history_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/pkg/history"
)

func TestClassify(t *testing.T) {
	top := history.Position{Offset: 10, Epoch: "e1"}
	at := func(off uint64) history.Position { return history.Position{Offset: off, Epoch: "e1"} }
	cases := []struct {
		name  string
		p     history.Position
		first uint64
		size  int
		want  history.Gap
	}{
		{"at the top", at(10), 0, 5, history.NoGap},
		{"next kept", at(7), 8, 5, history.NoGap},
		{"from 0, first kept", at(0), 1, 20, history.NoGap},
		{"beyond the size", at(4), 6, 5, history.Trimmed},
		{"just within the size", at(5), 7, 5, history.Expired},
		{"nothing kept, within the size", at(8), 0, 5, history.Expired},
		{"nothing kept, beyond the size", at(2), 0, 5, history.Trimmed},
		{"other epoch", history.Position{Offset: 7, Epoch: "e0"}, 1, 5, history.EpochChanged},
		{"empty epoch", history.Position{}, 1, 5, history.EpochChanged},
		{"beyond the top", at(11), 1, 5, history.EpochChanged},
	}
	for _, c := range cases {
		if got := history.Classify(c.p, top, c.first, c.size); got != c.want {
			t.Errorf("%s: Classify(%+v, %+v, %d, %d) = %q, want %q", c.name, c.p, top, c.first, c.size, got, c.want)
		}
	}
	if got := history.Start(at(4), top); got != 5 {
		t.Errorf("Start after 4: %d, want 5", got)
	}
	if got := history.Start(history.Position{Offset: 4, Epoch: "e0"}, top); got != 1 {
		t.Errorf("Start in another epoch: %d, want 1", got)
	}
}

func TestNewEpoch(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		e := history.NewEpoch()
		if len(e) != history.EpochLen || strings.Trim(e, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Fatalf("epoch %q: want %d URL-safe characters", e, history.EpochLen)
		}
		if seen[e] {
			t.Fatalf("epoch %q made twice in 1000", e)
		}
		seen[e] = true
	}
}

func TestCheck(t *testing.T) {
	ok := history.Options{Size: 1, TTL: time.Millisecond}
	if err := history.CheckSince("s", 1, ok); err != nil {
		t.Fatalf("CheckSince of good arguments: %v", err)
	}
	for what, err := range map[string]error{
		"no stream": history.Check("", ok),
		"size 0":    history.Check("s", history.Options{TTL: time.Second}),
		"ttl 0":     history.Check("s", history.Options{Size: 1}),
		"limit 0":   history.CheckSince("s", 0, ok),
	} {
		if !errors.Is(err, history.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", what, err)
		}
	}
}
