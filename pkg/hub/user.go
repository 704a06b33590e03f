package hub

import "time"

// User is the identity an authenticator gives a request. Every field may be
// empty: an empty field joins no index (unlike the seed server, which put
// all anonymous connections in one "" bucket).
type User struct {
	ID          string `json:"id,omitempty"`
	Name        string `json:"name,omitempty"`
	TenantID    string `json:"tenantId,omitempty"`
	AccessToken string `json:"accessToken,omitempty"`
	// Channels are the channels the identity grants: exact names, which a
	// connection of the user joins when it connects, and patterns, which
	// the app's channel policy may accept for joins from the browser.
	Channels []string `json:"channels,omitempty"`
	// Claims carries extra attributes of the user (JWT claims, the
	// webhook's answer) that introspection shows as the user object.
	Claims map[string]any `json:"claims,omitempty"`
	// ExpiresAt is when the credential that established the identity
	// expires (a JWT's exp); a connection of the user is closed with
	// ReasonTokenExpired then. Zero: never.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// MayActFor reports whether u may act on a connection of owner: the same
// user id and tenant, or, for users without id, the same access token.
func (u User) MayActFor(owner User) bool {
	if u.ID != "" {
		return u.ID == owner.ID && u.TenantID == owner.TenantID
	}
	return u.AccessToken != "" && u.AccessToken == owner.AccessToken
}
