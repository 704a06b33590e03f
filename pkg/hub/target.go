package hub

// Target addresses connections. The sets are united: a connection matches if
// it matches any non-empty set (or All). Listening further restricts the
// match to connections whose listener set holds the event name (the seed's
// "...Listening" sends).
type Target struct {
	All           bool     `json:"all,omitempty"`
	UserIDs       []string `json:"userIds,omitempty"`
	AccessTokens  []string `json:"accessTokens,omitempty"`
	TenantIDs     []string `json:"tenantIds,omitempty"`
	Channels      []string `json:"channels,omitempty"`
	ConnectionIDs []string `json:"connectionIds,omitempty"`
	Listening     bool     `json:"listening,omitempty"`
}

// IsZero reports whether t addresses nobody: not All, and no non-empty id
// in any set.
func (t Target) IsZero() bool {
	return !t.All && !anyID(t.UserIDs) && !anyID(t.AccessTokens) &&
		!anyID(t.TenantIDs) && !anyID(t.Channels) && !anyID(t.ConnectionIDs)
}

func anyID(ids []string) bool {
	for _, id := range ids {
		if id != "" {
			return true
		}
	}
	return false
}

// Routing key prefixes. A node holds routing key "u:42" while it has at least
// one connection of user 42, and so on; KeyAll is held by every node.
const (
	KeyAll          = "all"
	KeyUserPrefix   = "u:"
	KeyTokenPrefix  = "k:"
	KeyTenantPrefix = "t:"
	KeyChanPrefix   = "c:"
	KeyConnPrefix   = "x:"
)

// RoutingKeys lists the routing keys a node must hold to possibly have a
// connection matching t: a transport needs to reach only the nodes holding
// one of them. A target with All gives just KeyAll.
func RoutingKeys(t Target) []string {
	if t.All {
		return []string{KeyAll}
	}
	keys := make([]string, 0, len(t.UserIDs)+len(t.AccessTokens)+len(t.TenantIDs)+len(t.Channels)+len(t.ConnectionIDs))
	add := func(prefix string, vals []string) {
		for _, v := range vals {
			keys = append(keys, prefix+v)
		}
	}
	add(KeyUserPrefix, t.UserIDs)
	add(KeyTokenPrefix, t.AccessTokens)
	add(KeyTenantPrefix, t.TenantIDs)
	add(KeyChanPrefix, t.Channels)
	add(KeyConnPrefix, t.ConnectionIDs)
	return keys
}
