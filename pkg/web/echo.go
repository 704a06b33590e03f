package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"

	"github.com/pushd/pushd/pkg/hub"
)

// Echo is the upstream of an app without backend (the embedded demo): a
// message call is answered with what it carried and pushed back to the
// calling connection as the event "server-ack"; an upload call is answered
// with its fields and the names and sizes of its files.
func Echo(hb *hub.Hub, maxBody int64) UpstreamHandler {
	return UpstreamFunc(func(w http.ResponseWriter, r *http.Request, call Call) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		var data map[string]any
		var err error
		if call.Upload {
			data, err = echoUpload(r, maxBody)
		} else {
			data, err = echoMessage(r)
		}
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", tooBig.Limit))
				return
			}
			WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		data["path"] = call.Path
		data["connectionId"] = call.ConnectionID
		if !call.Upload && call.ConnectionID != "" {
			if _, err := hb.SendByConnectionID(r.Context(), call.ConnectionID, "server-ack", data); err != nil {
				WriteError(w, http.StatusBadGateway, err.Error())
				return
			}
		}
		WriteJSON(w, http.StatusOK, WrapOK(data))
	})
}

func echoMessage(r *http.Request) (map[string]any, error) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	var body any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			return nil, fmt.Errorf("malformed JSON: %w", err)
		}
	}
	query := map[string]string{}
	for k, v := range r.URL.Query() {
		if k != "connectionId" {
			query[k] = v[0]
		}
	}
	return map[string]any{"body": body, "query": query}, nil
}

type echoFile struct {
	Field string `json:"field"`
	Name  string `json:"name"`
	Size  int64  `json:"size"`
}

func echoUpload(r *http.Request, maxBody int64) (map[string]any, error) {
	if err := r.ParseMultipartForm(min(maxBody, 8<<20)); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, err
		}
		return nil, fmt.Errorf("not a multipart form: %w", err)
	}
	defer func() { _ = r.MultipartForm.RemoveAll() }()
	fields := map[string]string{}
	for k, v := range r.MultipartForm.Value {
		fields[k] = v[0]
	}
	files := []echoFile{}
	for field, hs := range r.MultipartForm.File {
		for _, fh := range hs {
			files = append(files, echoFile{Field: field, Name: fh.Filename, Size: fh.Size})
		}
	}
	if len(files) == 0 {
		return nil, errors.New("multipart upload without a file")
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Field+files[i].Name < files[j].Field+files[j].Name })
	return map[string]any{"fields": fields, "files": files}, nil
}
