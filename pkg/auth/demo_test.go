package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestDemo(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/connect?userId=u1&tenantId=t1&name=Ann&accessToken=k1", nil)
	u, err := Demo{}.Authenticate(r)
	if err != nil || u.ID != "u1" || u.TenantID != "t1" || u.Name != "Ann" || u.AccessToken != "k1" {
		t.Fatalf("query: %+v, %v", u, err)
	}

	r = httptest.NewRequest(http.MethodGet, "/connect", nil)
	r.AddCookie(&http.Cookie{Name: DemoCookie, Value: "u2"})
	if u, err = (Demo{}).Authenticate(r); err != nil || u.ID != "u2" {
		t.Fatalf("cookie: %+v, %v", u, err)
	}

	r = httptest.NewRequest(http.MethodGet, "/connect?userId=u3", nil)
	r.AddCookie(&http.Cookie{Name: DemoCookie, Value: "u2"})
	if u, err = (Demo{}).Authenticate(r); err != nil || u.ID != "u3" {
		t.Fatalf("query over cookie: %+v, %v", u, err)
	}

	r = httptest.NewRequest(http.MethodGet, "/connect?name=Nobody", nil)
	_, err = Demo{}.Authenticate(r)
	if !errors.Is(err, ErrUnauthenticated) || Reason(err) != "no user id" {
		t.Fatalf("anonymous: %v", err)
	}
}
