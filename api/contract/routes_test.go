package contract_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	openapi "github.com/pushd/pushd/api"
	"github.com/pushd/pushd/pkg/api"
)

// apiSource is the package whose router the contract describes.
const apiSource = "../../pkg/api"

// registrations are the methods of pkg/api that register a route: its own
// helper (behind the app and key check) and the mux's.
var registrations = map[string]bool{"handle": true, "Handle": true, "HandleFunc": true}

// sourceRoutes reads pkg/api's source and returns the pattern of every
// route it registers ("METHOD path"), without the catch-all "/". A
// registration whose pattern is not a constant expression fails the test:
// the list must be complete to be compared.
func sourceRoutes(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(apiSource, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		consts := stringConsts(f)
		var fn *ast.FuncDecl // the function being read
		ast.Inspect(f, func(n ast.Node) bool {
			if d, ok := n.(*ast.FuncDecl); ok {
				fn = d
			}
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !registrations[sel.Sel.Name] {
				return true
			}
			// A registration helper (handle) passes its parameter on to
			// the mux; its own calls are the routes.
			if id, ok := call.Args[0].(*ast.Ident); ok && fn != nil && registrations[fn.Name.Name] && isParam(fn, id.Name) {
				return true
			}
			pattern, ok := eval(call.Args[0], consts)
			if !ok {
				t.Errorf("%s: a route whose pattern is not a constant string", fset.Position(call.Pos()))
				return true
			}
			if pattern != "/" {
				routes = append(routes, pattern)
			}
			return true
		})
	}
	slices.Sort(routes)
	return routes
}

// isParam reports whether name is a parameter of fn.
func isParam(fn *ast.FuncDecl, name string) bool {
	for _, field := range fn.Type.Params.List {
		for _, n := range field.Names {
			if n.Name == name {
				return true
			}
		}
	}
	return false
}

// stringConsts maps the names of f's string constants (top level and in
// functions) to their values.
func stringConsts(f *ast.File) map[string]string {
	consts := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		d, ok := n.(*ast.GenDecl)
		if !ok || d.Tok != token.CONST {
			return true
		}
		for _, spec := range d.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if i < len(vs.Values) {
					if v, ok := eval(vs.Values[i], consts); ok {
						consts[name.Name] = v
					}
				}
			}
		}
		return true
	})
	return consts
}

// eval computes a constant string expression: literals, constants of
// consts and their sums.
func eval(e ast.Expr, consts map[string]string) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(e.Value)
		return s, err == nil
	case *ast.Ident:
		s, ok := consts[e.Name]
		return s, ok
	case *ast.ParenExpr:
		return eval(e.X, consts)
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return "", false
		}
		x, okx := eval(e.X, consts)
		y, oky := eval(e.Y, consts)
		return x + y, okx && oky
	}
	return "", false
}

// probe calls pkg/api's handler, built by api.New without apps, with
// method on pattern's path ({app} an unknown app, other wildcards "x"):
// true when a route took the request (the app lookup answers "unknown
// app"), false when the catch-all did ("no such API endpoint").
func probe(t *testing.T, h http.Handler, method, path string) bool {
	t.Helper()
	path = strings.ReplaceAll(path, "{app}", "nope")
	for strings.Contains(path, "{") {
		i, j := strings.Index(path, "{"), strings.Index(path, "}")
		path = path[:i] + "x" + path[j+1:]
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	var answer struct{ Error string }
	if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil || rec.Code != http.StatusNotFound {
		t.Fatalf("%s %s: %d %q", method, path, rec.Code, rec.Body)
	}
	switch {
	case answer.Error == `unknown app "nope"`:
		return true
	case strings.HasPrefix(answer.Error, "no such API endpoint"):
		return false
	}
	t.Fatalf("%s %s: %q", method, path, answer.Error)
	return false
}

// TestOperations derives the routes of the server API from pkg/api's
// source, checks them against the handler api.New builds, and requires
// one operation of the contract per route and one route per operation;
// the contract's own path is served by openapi.Handler (TestHandler, and
// test/openapi_test.go through pushd's router).
func TestOperations(t *testing.T) {
	routes := sourceRoutes(t)
	if len(routes) < 10 {
		t.Fatalf("only %d routes found in %s: %q", len(routes), apiSource, routes)
	}
	h, err := api.New(api.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ops := validator(t).Operations()

	// The real handler takes exactly the routes read from the source, on
	// every path of a route or an operation, with every method.
	paths := map[string]bool{"/api/v1/apps/{app}/nothing-here": true}
	for _, r := range append(slices.Clone(routes), ops...) {
		_, path, _ := strings.Cut(r, " ")
		if path != openapi.Path {
			paths[path] = true
		}
	}
	for path := range paths {
		for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			want := slices.Contains(routes, method+" "+path)
			if got := probe(t, h, method, path); got != want {
				t.Errorf("%s %s: routed %v by api.New's handler, %v by the source", method, path, got, want)
			}
		}
	}

	want := append(routes, "GET "+openapi.Path)
	slices.Sort(want)
	for _, r := range want {
		if !slices.Contains(ops, r) {
			t.Errorf("route %s has no operation in api/openapi.yaml", r)
		}
	}
	for _, op := range ops {
		if !slices.Contains(want, op) {
			t.Errorf("operation %s of api/openapi.yaml has no route", op)
		}
	}
	t.Logf("%d routes, %d operations", len(want), len(ops))
}
