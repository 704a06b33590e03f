package qos

// SetAckHook makes m's Ack call hook while the app is held, before the
// per-id work, so that a test can hold an Ack in the middle.
func SetAckHook(m *Memory, hook func(app string)) {
	m.ackHook = hook
}
