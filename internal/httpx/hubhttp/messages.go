package hubhttp

import (
	"context"
	"net/http"
	"strings"

	"github.com/pushd/pushd/internal/httpx"
	"github.com/pushd/pushd/pkg/hub"
	"github.com/pushd/pushd/pkg/qos"
)

// MessagesFilter reads the seed's filters of the QoS backlog: userId,
// accessToken, tenantId, channel and the first of listeners.
func MessagesFilter(r *http.Request) qos.Filter {
	q := r.URL.Query()
	return qos.Filter{UserID: q.Get("userId"), AccessToken: q.Get("accessToken"), TenantID: q.Get("tenantId"),
		Channel: q.Get("channel"), Event: strings.Split(q.Get("listeners"), ",")[0]}
}

// MessagesPage lists page pageNum (of pageSize) of the QoS backlog of hb
// matching f.
func MessagesPage(ctx context.Context, hb *hub.Hub, f qos.Filter, pageNum, pageSize int) (httpx.Page[qos.Message], error) {
	list, total, err := hb.Messages(ctx, f, (max(pageNum, 1)-1)*max(pageSize, 0), max(pageSize, 0))
	if err != nil {
		return httpx.Page[qos.Message]{}, err
	}
	if list == nil {
		list = []qos.Message{}
	}
	return httpx.Page[qos.Message]{Total: total, PageNum: pageNum, PageSize: pageSize, List: list}, nil
}
