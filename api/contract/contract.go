package contract

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	openapi "github.com/pushd/pushd/api"
)

// ErrUnknownOperation reports a request whose method and path the contract
// does not have.
var ErrUnknownOperation = errors.New("contract: no such operation")

// ErrAcceptedInvalid reports an answer below 400 to a request the contract
// refuses: either the contract is too strict or the server too lax.
var ErrAcceptedInvalid = errors.New("contract: the server accepted a request the contract refuses")

// Validator checks exchanges against the contract. It is safe for
// concurrent use.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
}

// New loads and validates the contract, its examples included.
func New() (*Validator, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapi.Spec)
	if err != nil {
		return nil, fmt.Errorf("contract: load: %w", err)
	}
	if err := doc.Validate(loader.Context, openapi3.EnableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("contract: invalid document: %w", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("contract: router: %w", err)
	}
	return &Validator{doc: doc, router: router}, nil
}

// Operations lists the contract's operations as "METHOD path", sorted.
func (v *Validator) Operations() []string {
	var ops []string
	for path, item := range v.doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	sort.Strings(ops)
	return ops
}

// Operation names the operation of r as "METHOD path", or fails with
// ErrUnknownOperation.
func (v *Validator) Operation(r *http.Request) (string, error) {
	route, _, err := v.router.FindRoute(r)
	if err != nil {
		return "", fmt.Errorf("%w: %s %s: %w", ErrUnknownOperation, r.Method, r.URL.Path, err)
	}
	return route.Method + " " + route.Path, nil
}

// CheckValue validates the JSON encoding of value against the contract's
// schema components/schemas/name.
func (v *Validator) CheckValue(name string, value any) error {
	ref, ok := v.doc.Components.Schemas[name]
	if !ok || ref.Value == nil {
		return fmt.Errorf("contract: no schema %q", name)
	}
	b, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("contract: encode %T: %w", value, err)
	}
	var decoded any
	if err := json.Unmarshal(b, &decoded); err != nil {
		return fmt.Errorf("contract: decode %T: %w", value, err)
	}
	if err := ref.Value.VisitJSON(decoded, openapi3.EnableJSONSchema2020()); err != nil {
		return fmt.Errorf("contract: %T as %s: %w", value, name, err)
	}
	return nil
}

// Exchange is one call of the API and its answer.
type Exchange struct {
	// Request is the call as sent; its Body is not read (RequestBody
	// holds it).
	Request     *http.Request
	RequestBody []byte
	// Status, Header and Body are the answer.
	Status int
	Header http.Header
	Body   []byte
}

// NDJSON is the media type of a streamed batch: one JSON value a line.
const NDJSON = "application/x-ndjson"

// Check validates ex. The answer must be one the contract documents for
// the operation, status included. A request that breaks the contract is
// fine as long as it was refused (4xx or 5xx): tests send bad requests on
// purpose; an answer below 400 to one is ErrAcceptedInvalid, except for a
// batch whose every item the contract refuses was answered with its error.
// An NDJSON body, request or answer, is checked a line at a time against
// its media type's schema (what OpenAPI 3.2 calls itemSchema). It returns
// the operation as "METHOD path".
func (v *Validator) Check(ctx context.Context, ex Exchange) (string, error) {
	req := ex.Request.Clone(ctx)
	req.Body = io.NopCloser(bytes.NewReader(ex.RequestBody))
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		return "", fmt.Errorf("%w: %s %s: %w", ErrUnknownOperation, req.Method, req.URL.Path, err)
	}
	op := route.Method + " " + route.Path
	streamIn := isNDJSON(req.Header)
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{MultiError: true, AuthenticationFunc: bearer, ExcludeRequestBody: streamIn},
	}
	reqErr := openapi3filter.ValidateRequest(ctx, in)
	if reqErr == nil && streamIn {
		reqErr = checkLines(requestSchema(route.Operation, NDJSON), ex.RequestBody)
	}
	if reqErr != nil && ex.Status < 400 {
		if err := acceptedBatch(ctx, in, ex, streamIn); err != nil {
			return op, fmt.Errorf("%w: %s %.200s answered %d: %w; %w", ErrAcceptedInvalid, op, ex.RequestBody, ex.Status, reqErr, err)
		}
	}
	streamOut := isNDJSON(ex.Header)
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: ex.Status, Header: ex.Header,
		Options: &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true, ExcludeResponseBody: streamOut},
	}
	out.SetBodyBytes(ex.Body)
	err = openapi3filter.ValidateResponse(ctx, out)
	if err == nil && streamOut {
		err = checkLines(responseSchema(route.Operation, ex.Status, NDJSON), ex.Body)
	}
	if err != nil {
		return op, fmt.Errorf("contract: %s answered %d %.2000s: %w", op, ex.Status, ex.Body, err)
	}
	return op, nil
}

func isNDJSON(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == NDJSON
}

// lines splits an NDJSON body into its lines, leaving out empty ones.
func lines(b []byte) [][]byte {
	var out [][]byte
	for line := range bytes.Lines(b) {
		if line = bytes.TrimSpace(line); len(line) > 0 {
			out = append(out, line)
		}
	}
	return out
}

// checkLines validates each line of an NDJSON body against schema.
func checkLines(schema *openapi3.Schema, body []byte) error {
	if schema == nil {
		return errors.New("the contract has no NDJSON body here")
	}
	for i, line := range lines(body) {
		if err := checkJSON(schema, line); err != nil {
			return fmt.Errorf("line %d: %w", i+1, err)
		}
	}
	return nil
}

// checkJSON validates one JSON value against schema.
func checkJSON(schema *openapi3.Schema, raw []byte) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	return schema.VisitJSON(v, openapi3.EnableJSONSchema2020())
}

// requestSchema is the schema of the operation's body of mediaType, or nil.
func requestSchema(op *openapi3.Operation, mediaType string) *openapi3.Schema {
	if op.RequestBody == nil || op.RequestBody.Value == nil {
		return nil
	}
	return schemaOf(op.RequestBody.Value.Content, mediaType)
}

// responseSchema is the schema of the operation's answer of status and
// mediaType, or nil.
func responseSchema(op *openapi3.Operation, status int, mediaType string) *openapi3.Schema {
	ref := op.Responses.Status(status)
	if ref == nil || ref.Value == nil {
		return nil
	}
	return schemaOf(ref.Value.Content, mediaType)
}

func schemaOf(c openapi3.Content, mediaType string) *openapi3.Schema {
	mt := c.Get(mediaType)
	if mt == nil || mt.Schema == nil {
		return nil
	}
	return mt.Schema.Value
}

// acceptedBatch reports nil when the server was right to accept a request
// the contract refuses: a batch (a JSON array, or NDJSON with stream)
// answered item by item, that is fine but for items the contract refuses,
// each answered with its error (a status of 400 or more). Any other
// request is an error.
func acceptedBatch(ctx context.Context, in *openapi3filter.RequestValidationInput, ex Exchange, stream bool) error {
	bodyless := *in
	bodyless.Options = &openapi3filter.Options{ExcludeRequestBody: true, AuthenticationFunc: bearer}
	if err := openapi3filter.ValidateRequest(ctx, &bodyless); err != nil {
		return err
	}
	var item *openapi3.Schema
	var items, answers [][]byte
	if stream {
		item, items, answers = requestSchema(in.Route.Operation, NDJSON), lines(ex.RequestBody), lines(ex.Body)
	} else {
		batch := batchSchema(in.Route.Operation)
		var sent, got []json.RawMessage
		if batch == nil || json.Unmarshal(ex.RequestBody, &sent) != nil || json.Unmarshal(ex.Body, &got) != nil {
			return errors.New("not a batch answered by an array")
		}
		if batch.MaxItems != nil && uint64(len(sent)) > *batch.MaxItems {
			return fmt.Errorf("a batch of %d, over %d", len(sent), *batch.MaxItems)
		}
		item = batch.Items.Value
		for _, raw := range sent {
			items = append(items, raw)
		}
		for _, raw := range got {
			answers = append(answers, raw)
		}
	}
	if item == nil || len(answers) != len(items) {
		return fmt.Errorf("%d answers to a batch of %d", len(answers), len(items))
	}
	for i, raw := range items {
		var answer struct {
			Status int `json:"status"`
		}
		if checkJSON(item, raw) != nil && (json.Unmarshal(answers[i], &answer) != nil || answer.Status < 400) {
			return fmt.Errorf("item %d breaks the contract but was answered as sent", i+1)
		}
	}
	return nil
}

// batchSchema is the array form of the operation's JSON body, or nil.
func batchSchema(op *openapi3.Operation) *openapi3.Schema {
	s := requestSchema(op, "application/json")
	if s == nil {
		return nil
	}
	for _, alt := range s.OneOf {
		if alt.Value.Type.Is(openapi3.TypeArray) && alt.Value.Items != nil {
			return alt.Value
		}
	}
	return nil
}

// bearer checks what the contract says of the key: an Authorization
// header with a non-empty bearer token. Whether the key is right is the
// server's to say (401).
func bearer(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	key, ok := strings.CutPrefix(in.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer ")
	if !ok || key == "" {
		return errors.New("no bearer token")
	}
	return nil
}
