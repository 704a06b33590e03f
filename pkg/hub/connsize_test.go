package hub

import (
	"testing"
	"unsafe"
)

// TestConnRecordSize keeps the record of an open connection within the
// 704-byte size class on 64-bit platforms: the next class is 768 bytes,
// 64 more per connection (docs/performance.md, idle memory). A new field
// may need a place among the small ones, or a class more said there.
func TestConnRecordSize(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("sizes are for 64-bit platforms")
	}
	if got := unsafe.Sizeof(Conn{}); got > 704 {
		t.Errorf("Conn is %d bytes, over the 704-byte size class", got)
	}
}
