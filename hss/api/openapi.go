package api

import (
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/imscore/imscore/pkg/version"
)

// schemaNames are the OpenAPI component names of the Go types that have
// another name there.
var schemaNames = map[string]string{
	"SubscriberRecord": "Subscriber",
	"AppServer":        "ApplicationServer",
}

// OpenAPI returns the OpenAPI 3.0 document of the API, generated from the
// route table (paths, operations, parameters, roles) and the Go types the
// handlers read and write (schemas: json tags give the properties, doc
// tags the descriptions, access:"read"/"write" readOnly/writeOnly,
// required:"true" the required ones). Objects forbid unknown properties,
// so a handler that writes what its type does not declare fails the API
// tests' response validation.
func (s *Server) OpenAPI() map[string]any {
	g := &schemaGen{defs: map[string]any{}}
	paths := map[string]any{}
	for _, rt := range s.routes {
		op := map[string]any{
			"operationId": rt.id,
			"summary":     rt.summary,
			"tags":        []string{rt.tag},
			"x-role":      rt.role.String(),
			"security":    []any{map[string]any{"bearer": []string{}}},
		}
		var params []any
		for _, p := range rt.params {
			params = append(params, map[string]any{"name": p.name, "in": p.in, "required": p.in == "path",
				"description": p.doc, "schema": map[string]any{"type": p.typ}})
		}
		if rt.ifMatch {
			params = append(params, map[string]any{"name": "If-Match", "in": "header", "required": false,
				"description": "the ETag of the object as read: 412 when it changed since", "schema": map[string]any{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		switch {
		case rt.in != nil:
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": g.ref(rt.in)}}}
		case rt.inCSV:
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"text/csv": map[string]any{"schema": map[string]any{"type": "string"}}}}
		}
		ok := map[string]any{"description": http.StatusText(rt.status)}
		switch {
		case rt.out != nil:
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": g.ref(rt.out)}}
		case rt.outCSV:
			ok["content"] = map[string]any{"text/csv": map[string]any{"schema": map[string]any{"type": "string"}}}
		}
		if rt.etag {
			ok["headers"] = map[string]any{"ETag": map[string]any{"description": "entity tag for If-Match",
				"schema": map[string]any{"type": "string"}}}
		}
		responses := map[string]any{strconv.Itoa(rt.status): ok}
		codes := append([]int{401, 500}, rt.errors...)
		if rt.role == RoleAdmin {
			codes = append(codes, 403)
		}
		for _, c := range codes {
			responses[strconv.Itoa(c)] = map[string]any{"$ref": "#/components/responses/Problem" + strconv.Itoa(c)}
		}
		op["responses"] = responses
		p, _ := paths[rt.path].(map[string]any)
		if p == nil {
			p = map[string]any{}
			paths[rt.path] = p
		}
		p[strings.ToLower(rt.method)] = op
	}
	problemRef := g.ref(typeOf[Problem]())
	responses := map[string]any{}
	for _, c := range []int{400, 401, 403, 404, 409, 412, 415, 422, 500, 503} {
		responses["Problem"+strconv.Itoa(c)] = map[string]any{
			"description": http.StatusText(c) + " (RFC 9457 problem details)",
			"content":     map[string]any{"application/problem+json": map[string]any{"schema": problemRef}},
		}
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":   "imscore HSS provisioning API",
			"version": version.Version,
			"description": "Subscribers (IMSU, IMPI with its authentication data, IMPUs in implicit registration sets, barring), " +
				"service profiles, iFCs, shared iFC sets, application servers with their Sh permissions and S-CSCFs of the HSS, " +
				"its registration state, and the operations deregister (RTR) and push-profile (PPR). K, OP, OPc and passwords are " +
				"write-only. Errors are RFC 9457 problem details. Bearer tokens have role read or admin (x-role of each operation).",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas":         g.defs,
			"responses":       responses,
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
		},
	}
}

type schemaGen struct{ defs map[string]any }

var genericName = regexp.MustCompile(`^([A-Za-z]+)\[.*\.([A-Za-z]+)\]$`)

func (g *schemaGen) name(t reflect.Type) string {
	n := t.Name()
	if m := genericName.FindStringSubmatch(n); m != nil { // List[pkg.Profile] → ProfileList
		inner := m[2]
		if alt, ok := schemaNames[inner]; ok {
			inner = alt
		}
		return inner + m[1]
	}
	if alt, ok := schemaNames[n]; ok {
		return alt
	}
	return n
}

// ref returns a $ref to t's schema, generating it once.
func (g *schemaGen) ref(t reflect.Type) map[string]any {
	n := g.name(t)
	if _, ok := g.defs[n]; !ok {
		g.defs[n] = nil // placeholder against recursion
		g.defs[n] = g.object(t)
	}
	return map[string]any{"$ref": "#/components/schemas/" + n}
}

func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if !f.IsExported() || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		sch := g.schema(f.Type)
		if d := f.Tag.Get("doc"); d != "" {
			if _, isRef := sch["$ref"]; isRef {
				sch = map[string]any{"allOf": []any{sch}, "description": d}
			} else {
				sch["description"] = d
			}
		}
		switch f.Tag.Get("access") {
		case "read":
			sch["readOnly"] = true
		case "write":
			sch["writeOnly"] = true
		}
		if f.Type.Kind() == reflect.Pointer && !strings.Contains(opts, "omitempty") {
			sch["nullable"] = true
		}
		props[name] = sch
		if f.Tag.Get("required") == "true" {
			required = append(required, name)
		}
	}
	o := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if required != nil {
		o["required"] = required
	}
	return o
}

var timeType = reflect.TypeOf(time.Time{})

func (g *schemaGen) schema(t reflect.Type) map[string]any {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == timeType {
		return map[string]any{"type": "string", "format": "date-time"}
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Uint64:
		return map[string]any{"type": "integer", "format": "int64"}
	case reflect.Int32, reflect.Int16:
		return map[string]any{"type": "integer", "format": "int32"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.Struct:
		return g.ref(t)
	}
	return map[string]any{}
}
