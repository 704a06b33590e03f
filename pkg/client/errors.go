package client

import "fmt"

// APIError is an answer of pushd other than 2xx. Match it with errors.As
// and look at Status: 400 bad input, 401 wrong or missing API key, 404
// unknown app, 413 body too large, 501 QoS not configured, 503 QoS store
// or node unavailable, 504 the cluster did not answer in time.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Message is the answer's "error" text; for an answer without one (a
	// proxy's), the start of a plain-text body or else the status text.
	Message string
}

// Error implements error.
func (e *APIError) Error() string {
	return fmt.Sprintf("client: pushd answered %d: %s", e.Status, e.Message)
}

// Error is the former name of APIError.
//
// Deprecated: use APIError.
type Error = APIError
