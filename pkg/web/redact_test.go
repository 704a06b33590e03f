package web

import "testing"

// TestLooksSecret pins which names count as credentials: keys, tokens and
// sessions in any spelling, not words that merely contain "key" or "auth".
func TestLooksSecret(t *testing.T) {
	for name, want := range map[string]bool{
		"access_token": true, "Authorization": true, "X-Api-Key": true, "apiKey": true, "APIKey": true,
		"accesskey": true, "password": true, "passwd": true, "pwd": true, "jwt": true, "JSESSIONID": true,
		"X-Auth-User": true, "auth": true, "sid": true, "X-CSRF-Token": true, "client_secret": true, "sig": true,
		"keyword": false, "author": false, "clientId": false, "connectionId": false, "keepaliveTime": false,
		"message": false, "User-Agent": false, "passenger": false, "Sec-Fetch-Site": false, "screen": false,
	} {
		if got := looksSecret(name); got != want {
			t.Errorf("looksSecret(%q) = %v, want %v", name, got, want)
		}
	}
}
