package nacostest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	pb "github.com/nacos-group/nacos-sdk-go/v2/api/grpc"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"
)

func request(typ string, body any) *pb.Payload {
	b, _ := json.Marshal(body)
	return &pb.Payload{Metadata: &pb.Metadata{Type: typ}, Body: &anypb.Any{Value: b}}
}

// TestProtocolInvariants drives the fake with a raw gRPC client and checks
// what the SDK relies on: 301 before setup, pushes with a request id, the
// subscriber's clusters and a strictly increasing lastRefTime, and removal
// of a connection's instances when its stream ends.
func TestProtocolInvariants(t *testing.T) {
	srv, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cc, err := grpc.NewClient("passthrough:///"+srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	unary := pb.NewRequestClient(cc)

	var base struct {
		ResultCode   int    `json:"resultCode"`
		ErrorCode    int    `json:"errorCode"`
		Success      bool   `json:"success"`
		ConnectionID string `json:"connectionId"`
	}
	call := func(typ string, body any) string {
		t.Helper()
		p, err := unary.Request(ctx, request(typ, body))
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		base.ErrorCode, base.Success = 0, false
		if err := json.Unmarshal(p.GetBody().GetValue(), &base); err != nil {
			t.Fatal(err)
		}
		return p.GetMetadata().GetType()
	}
	if typ := call("ServerCheckRequest", map[string]string{"module": "internal"}); typ != "ServerCheckResponse" || base.ConnectionID == "" || !base.Success {
		t.Fatalf("server check: %s %+v", typ, base)
	}
	instance := map[string]any{"namespace": "public", "serviceName": "svc", "groupName": "g", "module": "naming",
		"type": "registerInstance", "instance": map[string]any{"ip": "10.1.1.1", "port": 80, "enabled": true, "healthy": true, "weight": 1, "ephemeral": true}}
	if typ := call("InstanceRequest", instance); typ != "ErrorResponse" || base.ErrorCode != 301 {
		t.Fatalf("before setup: %s %+v, want ErrorResponse 301", typ, base)
	}

	stream, err := pb.NewBiRequestStreamClient(cc).RequestBiStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(request("ConnectionSetupRequest", map[string]any{"module": "internal"})); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.Connections() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("connection never set up")
		}
		time.Sleep(5 * time.Millisecond)
	}
	sub := map[string]any{"namespace": "public", "serviceName": "svc", "groupName": "g", "module": "naming", "subscribe": true, "clusters": "DEFAULT"}
	if typ := call("SubscribeServiceRequest", sub); typ != "SubscribeServiceResponse" || !base.Success {
		t.Fatalf("subscribe: %s %+v", typ, base)
	}
	var lastRef uint64
	for i := range 2 {
		instance["instance"].(map[string]any)["port"] = 80 + i // re-register replaces
		if typ := call("InstanceRequest", instance); typ != "InstanceResponse" || !base.Success {
			t.Fatalf("register: %s %+v", typ, base)
		}
		p, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		var push struct {
			RequestID   string        `json:"requestId"`
			ServiceInfo model.Service `json:"serviceInfo"`
		}
		if err := json.Unmarshal(p.GetBody().GetValue(), &push); err != nil {
			t.Fatal(err)
		}
		si := push.ServiceInfo
		if p.GetMetadata().GetType() != "NotifySubscriberRequest" || push.RequestID == "" || si.Clusters != "DEFAULT" ||
			si.LastRefTime <= lastRef || len(si.Hosts) != 1 || si.Hosts[0].Port != uint64(80+i) ||
			si.Hosts[0].InstanceId != "10.1.1.1#"+string(rune('0'+8))+string(rune('0'+i))+"#DEFAULT#g@@svc" {
			t.Fatalf("push %d: %s %+v", i, p.GetMetadata().GetType(), push)
		}
		lastRef = si.LastRefTime
		if err := stream.Send(request("NotifySubscriberResponse", map[string]any{"resultCode": 200, "requestId": push.RequestID})); err != nil {
			t.Fatal(err)
		}
	}
	deadline = time.Now().Add(5 * time.Second)
	for srv.Acks() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("acks = %d, want 2", srv.Acks())
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = stream.CloseSend()
	cancel()
	deadline = time.Now().Add(5 * time.Second)
	for len(srv.Instances("public", "g", "svc")) != 0 || srv.Connections() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("instances of a closed connection were not removed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
