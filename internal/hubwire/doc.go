// Package hubwire is the binary encoding of the hub's values that the
// cluster transports send between nodes: length-prefixed strings, the id
// lists of a hub.Target and a hub.Event with its stream positions. It owns
// the field encodings only; each transport frames its messages (format
// byte, flags, ids) itself. Decoded strings share the message's memory.
package hubwire
