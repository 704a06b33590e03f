package qos

// Stats are the counters of one repository, counted by this process since
// the repository was created. They only grow; a metrics exporter reports
// them as counters.
type Stats struct {
	// Stored counts messages Save stored (a repeated Save of a stored id,
	// or of a message already expired, is not counted).
	Stored uint64 `json:"stored"`
	// Acked counts acknowledgements that Ack accepted: one per message and
	// recipient, the sum of what Ack returned.
	Acked uint64 `json:"acked"`
	// Expired counts messages removed because their ExpiresAt passed. In
	// Redis (package redisqos), where keys expire by themselves, the
	// process whose sweep notices the expiry counts it (sweeps run on Save
	// and List).
	Expired uint64 `json:"expired"`
	// Evicted counts inbox entries dropped because an inbox or the whole
	// store was full (MaxMessages or MaxBytes of Memory), before their
	// recipient acknowledged them. A message evicted from the store as a
	// whole counts once.
	Evicted uint64 `json:"evicted"`
}

// StatsReporter is implemented by repositories that count what they do;
// Memory and the redisqos store do. Callers find it by type assertion.
type StatsReporter interface {
	Stats() Stats
}
