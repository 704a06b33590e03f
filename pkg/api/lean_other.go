//go:build !unix

package api

import "net"

// peekPrefix cannot peek without reading here: every connection goes to
// net/http.
func peekPrefix(net.Conn, string) peekResult { return peekOther }
