package auth

import (
	"net/http"

	"github.com/pushd/pushd/pkg/hub"
)

// DemoCookie is the cookie Demo reads the user id from when the query
// string names none.
const DemoCookie = "pushd_demo_user"

// Demo takes the identity from the request itself, for demos and tests:
// query parameters userId, tenantId, name and accessToken, or else the
// cookie DemoCookie whose value is the user id.
//
// Demo trusts the caller completely: anyone can claim to be anyone. Never
// use it where users are not trusted. The zero value is ready to use.
type Demo struct{}

// Authenticate implements Authenticator. A request naming no user id
// fails with ErrUnauthenticated ("no user id").
func (Demo) Authenticate(r *http.Request) (hub.User, error) {
	q := r.URL.Query()
	u := hub.User{
		ID:          q.Get("userId"),
		TenantID:    q.Get("tenantId"),
		Name:        q.Get("name"),
		AccessToken: q.Get("accessToken"),
	}
	if u.ID == "" {
		if c, err := r.Cookie(DemoCookie); err == nil {
			u.ID = c.Value
		}
	}
	if u.ID == "" {
		return hub.User{}, unauthenticated("no user id")
	}
	return u, nil
}
