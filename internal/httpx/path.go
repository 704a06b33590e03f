package httpx

// MaxPathLen bounds the {path} of a message or upload call.
const MaxPathLen = 200

// ValidPath reports whether path is one safe URL path segment, as the
// {path} of a message or upload call must be: 1 to MaxPathLen characters
// from A-Z a-z 0-9 - _ . ~, and not "." or "..". Anything
// percent-encoded, slashes and backslashes are refused.
func ValidPath(path string) bool {
	if path == "" || len(path) > MaxPathLen || path == "." || path == ".." {
		return false
	}
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '~':
		default:
			return false
		}
	}
	return true
}
