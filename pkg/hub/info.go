package hub

import (
	"encoding/binary"
	"maps"
	"slices"
	"time"
)

// ClientInfo is what a browser told about itself when it connected: the
// seed client's telemetry parameters and the request's metadata.
type ClientInfo struct {
	ClientID               string            `json:"clientId,omitempty"`
	ClientVersion          string            `json:"clientVersion,omitempty"`
	ClientInstanceID       string            `json:"clientInstanceId,omitempty"`
	ClientInstanceTime     int64             `json:"clientInstanceTime,omitempty"`
	ClientImportModuleTime int64             `json:"clientImportModuleTime,omitempty"`
	AccessTime             int64             `json:"accessTime,omitempty"`
	Screen                 string            `json:"screen,omitempty"`
	LocationHref           string            `json:"locationHref,omitempty"`
	JSHeapSizeLimit        int64             `json:"jsHeapSizeLimit,omitempty"`
	TotalJSHeapSize        int64             `json:"totalJSHeapSize,omitempty"`
	UsedJSHeapSize         int64             `json:"usedJSHeapSize,omitempty"`
	RequestIP              string            `json:"requestIp,omitempty"`
	RequestDomain          string            `json:"requestDomain,omitempty"`
	UserAgent              string            `json:"userAgent,omitempty"`
	Headers                map[string]string `json:"httpHeaders,omitempty"`
	Params                 map[string]string `json:"httpParameters,omitempty"`
}

// ConnectionInfo is the introspection view of a connection, with the field
// names of the seed server's connection DTO.
type ConnectionInfo struct {
	ID         string `json:"id"`
	NodeID     string `json:"serverId"`
	CreateTime int64  `json:"createTime"`
	ExpireTime int64  `json:"expireTime,omitempty"`
	Timeout    int64  `json:"timeout"`
	// Channel is the first of Channels, the seed's single channel.
	Channel             string   `json:"channel,omitempty"`
	Channels            []string `json:"channels,omitempty"`
	MessageCount        uint64   `json:"messageCount"`
	SessionDuration     int64    `json:"sessionDuration"`
	LastRequestTime     int64    `json:"lastRequestTime,omitempty"`
	RequestMessageCount uint64   `json:"requestMessageCount"`
	RequestUploadCount  uint64   `json:"requestUploadCount"`
	Listeners           []string `json:"listeners"`
	AccessUserID        string   `json:"accessUserId,omitempty"`
	AccessUserName      string   `json:"accessUserName,omitempty"`
	AccessTenantID      string   `json:"accessTenantId,omitempty"`
	AccessToken         string   `json:"accessToken,omitempty"`
	AccessUser          User     `json:"accessUser"`
	CanAck              bool     `json:"canAck"`
	ClientInfo
}

// Snapshot returns the connection's current introspection view.
func (c *Conn) Snapshot() ConnectionInfo {
	ci := ConnectionInfo{
		ID:             c.id,
		NodeID:         c.hub.cfg.NodeID,
		CreateTime:     c.created / int64(time.Millisecond),
		AccessUserID:   c.user.ID,
		AccessUserName: c.user.Name,
		AccessTenantID: c.user.TenantID,
		AccessToken:    c.user.AccessToken,
		AccessUser:     c.user,
		CanAck:         c.canAck,
		ClientInfo:     c.Info(),
	}
	if c.expires != 0 {
		ci.ExpireTime = c.expires
		ci.Timeout = c.expires - ci.CreateTime
	}
	if ci.Channels = c.Channels(); len(ci.Channels) > 0 {
		ci.Channel = ci.Channels[0]
	}
	c.mu.Lock()
	ci.MessageCount = c.sent
	ci.SessionDuration = c.session
	ci.RequestMessageCount = c.requests
	ci.RequestUploadCount = c.uploads
	ci.LastRequestTime = c.lastRequest
	ci.Listeners = c.listenersLocked()
	c.mu.Unlock()
	return ci
}

// packParams encodes a connection's ClientInfo.Params as one string, the
// names in order, each name and value preceded by its length (a uvarint):
// for the few parameters a browser sends, a fraction of a map's ~340
// bytes. unpackParams makes the map again.
func packParams(params map[string]string) string {
	if len(params) == 0 {
		return ""
	}
	n := 0
	for k, v := range params {
		n += len(k) + len(v) + 2*binary.MaxVarintLen64
	}
	b := make([]byte, 0, n)
	for _, k := range slices.Sorted(maps.Keys(params)) {
		for _, s := range [2]string{k, params[k]} {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
	}
	return string(b)
}

// unpackParams decodes a string of packParams; nil for none.
func unpackParams(s string) map[string]string {
	if s == "" {
		return nil
	}
	m := make(map[string]string)
	for s != "" {
		var pair [2]string
		for i := range pair {
			n, k := binary.Uvarint([]byte(s[:min(len(s), binary.MaxVarintLen64)]))
			if k <= 0 || n > uint64(len(s)-k) {
				return m // not of packParams: cannot happen
			}
			pair[i], s = s[k:k+int(n)], s[k+int(n):]
		}
		m[pair[0]] = pair[1]
	}
	return m
}
