package httpx

import (
	"math"
	"net/http"
	"strconv"
)

// Page is one page of a list, in the seed server's PageInfo shape.
type Page[T any] struct {
	Total    int  `json:"total"`
	PageNum  int  `json:"pageNum"`
	PageSize int  `json:"pageSize"`
	List     []T  `json:"list"`
	Timeout  bool `json:"timeout"`
}

// PageOf slices list for pageNum (from 1) and pageSize as the seed does.
func PageOf[T any](list []T, pageNum, pageSize int) Page[T] {
	return PageFrom(list, len(list), pageNum, pageSize)
}

// PageFrom is PageOf for a list holding only the first items of total
// (at least PageLimit of them, when there are as many).
func PageFrom[T any](list []T, total, pageNum, pageSize int) Page[T] {
	p := Page[T]{Total: total, PageNum: pageNum, PageSize: pageSize, List: []T{}}
	if pageSize <= 0 {
		return p
	}
	from := (max(pageNum, 1) - 1) * pageSize
	if from < len(list) {
		p.List = list[from:min(from+pageSize, len(list))]
	}
	return p
}

// PageLimit is how many items of the order a page needs: those of every
// page up to pageNum (1 when pageSize asks for none, to count them).
func PageLimit(pageNum, pageSize int) int {
	if pageSize <= 0 {
		return 1
	}
	pages := max(pageNum, 1)
	if pages > math.MaxInt32/pageSize {
		return math.MaxInt32
	}
	return pages * pageSize
}

// PageParams reads pageNum (default 1) and pageSize (default 100).
func PageParams(r *http.Request) (pageNum, pageSize int) {
	pageNum, pageSize = 1, 100
	if n, err := strconv.Atoi(r.URL.Query().Get("pageNum")); err == nil {
		pageNum = n
	}
	if n, err := strconv.Atoi(r.URL.Query().Get("pageSize")); err == nil {
		pageSize = n
	}
	return pageNum, pageSize
}
