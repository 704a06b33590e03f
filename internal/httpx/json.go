package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// WriteJSON answers v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError answers {"error": msg} with status, the error shape of every
// pushd endpoint. A Content-Length set before (by a handler that meant to
// answer something else) is dropped.
func WriteError(w http.ResponseWriter, status int, msg string) {
	w.Header().Del("Content-Length")
	WriteJSON(w, status, map[string]string{"error": msg})
}

// errTrailingData refuses a body with more after its JSON value.
var errTrailingData = errors.New("malformed JSON: data after the JSON value")

// ReadJSON decodes a JSON body of at most maxBody bytes into v; with
// strict, unknown fields are refused. Anything but white space after the
// value is refused too. On failure it answers 400 or 413 itself and
// reports false.
func ReadJSON(w http.ResponseWriter, r *http.Request, v any, maxBody int64, strict bool) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(r.Body)
	if strict {
		dec.DisallowUnknownFields()
	}
	err := dec.Decode(v)
	if err == nil {
		switch _, err = dec.Token(); err {
		case io.EOF:
			err = nil
		case nil:
			err = errTrailingData
		}
	}
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", tooBig.Limit))
	case errors.Is(err, errTrailingData):
		WriteError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, io.EOF):
		WriteError(w, http.StatusBadRequest, "empty body: a JSON object is expected")
	default:
		WriteError(w, http.StatusBadRequest, "malformed JSON: "+err.Error())
	}
	return false
}

// WrapOK wraps data the way the seed server wraps successful answers:
// {"success": true, "code": 200, "data": data, "message": null,
// "errorMessage": null}.
func WrapOK(data any) any {
	return okBody{Success: true, Code: http.StatusOK, Data: data}
}

// okBody is the seed server's success envelope.
type okBody struct {
	Success      bool    `json:"success"`
	Code         int     `json:"code"`
	Data         any     `json:"data"`
	Message      *string `json:"message"`
	ErrorMessage *string `json:"errorMessage"`
}
