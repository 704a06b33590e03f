// Package qos owns pushd's at-least-once contract: the Message, the
// Repository that keeps messages until their recipients acknowledge them,
// and its in-memory and Redis implementations.
//
// The package imports nothing else of pushd. The hub stores a QoS message
// before delivering it, and deletes it (Ack) only once a recipient confirmed
// it or, for clients that cannot confirm, once it was written to them.
package qos
