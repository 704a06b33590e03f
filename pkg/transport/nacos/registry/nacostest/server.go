package nacostest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pb "github.com/nacos-group/nacos-sdk-go/v2/api/grpc"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/types/known/anypb"
)

// Server is a running fake Nacos naming server.
type Server struct {
	gs *grpc.Server
	ln net.Listener

	mu        sync.Mutex
	conns     map[string]*conn                          // connection id → set-up connection
	instances map[serviceKey]map[string]model.Instance  // → connection id → its instance
	subs      map[serviceKey]map[string]map[string]bool // → connection id → clusters strings
	lastRef   uint64
	requestID uint64

	pushes atomic.Int64
	acks   atomic.Int64
}

type serviceKey struct{ namespace, group, name string }

type conn struct {
	id     string
	sendMu sync.Mutex
	stream pb.BiRequestStream_RequestBiStreamServer
}

func (c *conn) send(p *pb.Payload) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	return c.stream.Send(p)
}

// Start listens on addr ("127.0.0.1:0" for a random port) and serves.
func Start(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("nacostest: listen: %w", err)
	}
	s := &Server{
		gs:        grpc.NewServer(),
		ln:        ln,
		conns:     make(map[string]*conn),
		instances: make(map[serviceKey]map[string]model.Instance),
		subs:      make(map[serviceKey]map[string]map[string]bool),
	}
	pb.RegisterRequestServer(s.gs, (*unary)(s))
	pb.RegisterBiRequestStreamServer(s.gs, (*stream)(s))
	go func() { _ = s.gs.Serve(ln) }()
	return s, nil
}

// Addr is the gRPC address, "127.0.0.1:port".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// ClientAddr is the address to give the SDK: a nominal HTTP port (never
// used: no login, ephemeral instances only) and the real gRPC port, in the
// "host:port?grpc_port=N" form of registry.Config.Servers.
func (s *Server) ClientAddr() string {
	host, port, _ := net.SplitHostPort(s.Addr())
	return net.JoinHostPort(host, "8848") + "?grpc_port=" + port
}

// GRPCPort is the port the server listens on.
func (s *Server) GRPCPort() uint64 {
	_, port, _ := net.SplitHostPort(s.Addr())
	p, _ := strconv.ParseUint(port, 10, 16)
	return p
}

// Close stops the server and drops every connection at once.
func (s *Server) Close() { s.gs.Stop() }

// Instances returns the instances of a service, ordered by ip and port.
func (s *Server) Instances(namespace, group, service string) []model.Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hostsLocked(serviceKey{namespace, group, service}, "")
}

// Connections is the number of set-up client connections.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Pushes is the number of NotifySubscriberRequests sent; Acks the number of
// NotifySubscriberResponses received.
func (s *Server) Pushes() int64 { return s.pushes.Load() }

// Acks is the number of push acknowledgements received.
func (s *Server) Acks() int64 { return s.acks.Load() }

// response is the common part of every Nacos response.
type response struct {
	ResultCode int    `json:"resultCode"`
	ErrorCode  int    `json:"errorCode"`
	Success    bool   `json:"success"`
	Message    string `json:"message"`
	RequestID  string `json:"requestId"`
}

var ok = response{ResultCode: 200, Success: true}

// namingRequest is the common part of the naming requests.
type namingRequest struct {
	RequestID   string `json:"requestId"`
	Namespace   string `json:"namespace"`
	ServiceName string `json:"serviceName"`
	GroupName   string `json:"groupName"`
	Module      string `json:"module"`
}

func (r namingRequest) key() serviceKey { return serviceKey{r.Namespace, r.GroupName, r.ServiceName} }

func payload(typ string, body any) *pb.Payload {
	b, err := json.Marshal(body)
	if err != nil { // cannot happen with the types above; answer an error anyway
		typ = "ErrorResponse"
		b = []byte(`{"resultCode":500,"errorCode":500,"success":false,"message":"encode"}`)
	}
	return &pb.Payload{Metadata: &pb.Metadata{Type: typ}, Body: &anypb.Any{Value: b}}
}

func errorPayload(code int, msg string) *pb.Payload {
	return payload("ErrorResponse", response{ResultCode: 500, ErrorCode: code, Message: msg})
}

// connID identifies a client connection by its remote address: the SDK uses
// one TCP connection per client for unary calls and the stream alike.
func connID(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok {
		return p.Addr.String()
	}
	return ""
}

type unary Server

// Request answers the unary calls.
func (u *unary) Request(ctx context.Context, p *pb.Payload) (*pb.Payload, error) {
	s := (*Server)(u)
	id := connID(ctx)
	typ, body := p.GetMetadata().GetType(), p.GetBody().GetValue()
	switch typ {
	case "ServerCheckRequest":
		return payload("ServerCheckResponse", struct {
			response
			ConnectionID string `json:"connectionId"`
		}{ok, id}), nil
	case "HealthCheckRequest":
		return payload("HealthCheckResponse", ok), nil
	}
	s.mu.Lock()
	_, setUp := s.conns[id]
	s.mu.Unlock()
	if !setUp {
		// As the real server: naming calls need ConnectionSetupRequest first.
		return errorPayload(301, "Connection is unregistered."), nil
	}
	switch typ {
	case "InstanceRequest":
		var req struct {
			namingRequest
			Type     string         `json:"type"`
			Instance model.Instance `json:"instance"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return errorPayload(400, err.Error()), nil
		}
		switch req.Type {
		case "registerInstance":
			s.register(id, req.key(), req.Instance)
		case "deregisterInstance":
			s.deregister(id, req.key(), req.Instance)
		default:
			return errorPayload(400, "unknown instance request type "+req.Type), nil
		}
		return payload("InstanceResponse", ok), nil
	case "SubscribeServiceRequest":
		var req struct {
			namingRequest
			Subscribe bool   `json:"subscribe"`
			Clusters  string `json:"clusters"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return errorPayload(400, err.Error()), nil
		}
		info := s.subscribe(id, req.key(), req.Clusters, req.Subscribe)
		return payload("SubscribeServiceResponse", struct {
			response
			ServiceInfo model.Service `json:"serviceInfo"`
		}{ok, info}), nil
	case "ServiceQueryRequest":
		var req struct {
			namingRequest
			Cluster string `json:"cluster"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return errorPayload(400, err.Error()), nil
		}
		s.mu.Lock()
		info := s.serviceInfoLocked(req.key(), req.Cluster)
		s.mu.Unlock()
		return payload("QueryServiceResponse", struct {
			response
			ServiceInfo model.Service `json:"serviceInfo"`
		}{ok, info}), nil
	}
	return errorPayload(501, "unsupported request "+typ), nil
}

type stream Server

// RequestBiStream serves one client's stream: setup, push acks; its end
// removes the client's instances and subscriptions.
func (st *stream) RequestBiStream(bs pb.BiRequestStream_RequestBiStreamServer) error {
	s := (*Server)(st)
	c := &conn{id: connID(bs.Context()), stream: bs}
	defer s.dropConn(c.id)
	for {
		p, err := bs.Recv()
		if err != nil {
			return nil
		}
		switch p.GetMetadata().GetType() {
		case "ConnectionSetupRequest":
			s.mu.Lock()
			s.conns[c.id] = c
			s.mu.Unlock()
		case "NotifySubscriberResponse":
			s.acks.Add(1)
		}
	}
}

func (s *Server) register(id string, k serviceKey, in model.Instance) {
	if in.ClusterName == "" {
		in.ClusterName = "DEFAULT"
	}
	in.ServiceName = k.group + "@@" + k.name
	in.InstanceId = fmt.Sprintf("%s#%d#%s#%s", in.Ip, in.Port, in.ClusterName, in.ServiceName)
	s.mu.Lock()
	if s.instances[k] == nil {
		s.instances[k] = make(map[string]model.Instance)
	}
	s.instances[k][id] = in // one instance per service per connection, as Nacos 2.x
	s.mu.Unlock()
	s.push(k)
}

func (s *Server) deregister(id string, k serviceKey, in model.Instance) {
	s.mu.Lock()
	cur, found := s.instances[k][id]
	if found && cur.Ip == in.Ip && cur.Port == in.Port {
		delete(s.instances[k], id)
	} else {
		found = false
	}
	s.mu.Unlock()
	if found {
		s.push(k)
	}
}

func (s *Server) subscribe(id string, k serviceKey, clusters string, on bool) model.Service {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		if s.subs[k] == nil {
			s.subs[k] = make(map[string]map[string]bool)
		}
		if s.subs[k][id] == nil {
			s.subs[k][id] = make(map[string]bool)
		}
		s.subs[k][id][clusters] = true
	} else {
		delete(s.subs[k][id], clusters)
	}
	return s.serviceInfoLocked(k, clusters)
}

func (s *Server) dropConn(id string) {
	s.mu.Lock()
	delete(s.conns, id)
	var changed []serviceKey
	for k, byConn := range s.instances {
		if _, ok := byConn[id]; ok {
			delete(byConn, id)
			changed = append(changed, k)
		}
	}
	for _, byConn := range s.subs {
		delete(byConn, id)
	}
	s.mu.Unlock()
	for _, k := range changed {
		s.push(k)
	}
}

// push sends the current instance list of k to each subscriber, with the
// subscriber's own clusters string (the SDK's callback key) and a strictly
// increasing lastRefTime (the SDK drops anything not newer).
func (s *Server) push(k serviceKey) {
	type out struct {
		c *conn
		p *pb.Payload
	}
	var outs []out
	s.mu.Lock()
	for id, clusterSet := range s.subs[k] {
		c := s.conns[id]
		if c == nil {
			continue
		}
		for clusters := range clusterSet {
			s.requestID++
			outs = append(outs, out{c, payload("NotifySubscriberRequest", struct {
				namingRequest
				ServiceInfo model.Service `json:"serviceInfo"`
			}{
				// Without a requestId the SDK dereferences nil and crashes.
				namingRequest{RequestID: "push-" + strconv.FormatUint(s.requestID, 10), Namespace: k.namespace,
					ServiceName: k.name, GroupName: k.group, Module: "naming"},
				s.serviceInfoLocked(k, clusters),
			})})
		}
	}
	s.mu.Unlock()
	for _, o := range outs {
		if err := o.c.send(o.p); err == nil {
			s.pushes.Add(1)
		}
	}
}

func (s *Server) serviceInfoLocked(k serviceKey, clusters string) model.Service {
	now := uint64(time.Now().UnixMilli())
	if now <= s.lastRef {
		now = s.lastRef + 1
	}
	s.lastRef = now
	hosts := s.hostsLocked(k, clusters)
	return model.Service{
		Name: k.name, GroupName: k.group, Clusters: clusters, CacheMillis: 10000,
		Hosts: hosts, LastRefTime: now, Valid: true,
	}
}

// hostsLocked lists the instances of k in the given clusters ("" = all).
func (s *Server) hostsLocked(k serviceKey, clusters string) []model.Instance {
	want := map[string]bool{}
	for _, c := range strings.Split(clusters, ",") {
		if c != "" {
			want[c] = true
		}
	}
	hosts := []model.Instance{}
	for _, in := range s.instances[k] {
		if len(want) == 0 || want[in.ClusterName] {
			hosts = append(hosts, in)
		}
	}
	sort.Slice(hosts, func(i, j int) bool {
		if hosts[i].Ip != hosts[j].Ip {
			return hosts[i].Ip < hosts[j].Ip
		}
		return hosts[i].Port < hosts[j].Port
	})
	return hosts
}
