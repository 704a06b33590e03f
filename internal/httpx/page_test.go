package httpx

import (
	"math"
	"net/http/httptest"
	"slices"
	"testing"
)

func TestPageOf(t *testing.T) {
	list := []int{1, 2, 3, 4, 5}
	for _, c := range []struct {
		num, size int
		want      []int
	}{
		{1, 2, []int{1, 2}},
		{3, 2, []int{5}},
		{4, 2, []int{}},
		{0, 2, []int{1, 2}}, // pageNum below 1 is the first page
		{-3, 2, []int{1, 2}},
		{1, 0, []int{}}, // pageSize 0 only counts
		{1, -1, []int{}},
		{1, 100, list},
	} {
		p := PageOf(list, c.num, c.size)
		if !slices.Equal(p.List, c.want) || p.Total != 5 || p.PageNum != c.num || p.PageSize != c.size || p.List == nil {
			t.Errorf("PageOf(%d, %d) = %+v, want list %v of total 5", c.num, c.size, p, c.want)
		}
	}
	// A list holding only the first items of a longer order.
	if p := PageFrom([]int{1, 2, 3, 4}, 50, 2, 2); !slices.Equal(p.List, []int{3, 4}) || p.Total != 50 {
		t.Errorf("PageFrom = %+v", p)
	}
}

func TestPageLimit(t *testing.T) {
	for _, c := range []struct{ num, size, want int }{
		{1, 10, 10}, {3, 10, 30}, {0, 10, 10}, {2, 0, 1}, {2, -5, 1},
		{math.MaxInt32, 2, math.MaxInt32}, {math.MaxInt, math.MaxInt, math.MaxInt32},
	} {
		if got := PageLimit(c.num, c.size); got != c.want {
			t.Errorf("PageLimit(%d, %d) = %d, want %d", c.num, c.size, got, c.want)
		}
	}
	// The limit always covers the page PageFrom cuts.
	list := make([]int, PageLimit(3, 7))
	if p := PageFrom(list, 1000, 3, 7); len(p.List) != 7 {
		t.Errorf("page 3 of 7 from %d items has %d", len(list), len(p.List))
	}
}

func TestPageParams(t *testing.T) {
	for target, want := range map[string][2]int{
		"/":                              {1, 100},
		"/?pageNum=3&pageSize=20":        {3, 20},
		"/?pageNum=x&pageSize=":          {1, 100},
		"/?pageNum=-1&pageSize=0":        {-1, 0},
		"/?pageNum=99999999999999999999": {1, 100}, // beyond int64: the default
	} {
		n, s := PageParams(httptest.NewRequest("GET", target, nil))
		if n != want[0] || s != want[1] {
			t.Errorf("%s: %d, %d, want %v", target, n, s, want)
		}
	}
}
