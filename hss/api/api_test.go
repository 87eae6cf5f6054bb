package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/imscore/imscore/hss/api"
	"github.com/imscore/imscore/pkg/pgtest"
)

const (
	adminToken = "admin-token-0123456789"
	readToken  = "read-token-0123456789ab"
	k          = "465b5ce8b199b49faa5f0a2ee238a6bc"
	op         = "cdc202d5123e20f62b6d676ac72cb318"
)

// fakeOps records the operations the API asks for.
type fakeOps struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeOps) Deregister(_ context.Context, impu, reason string) api.Outcome {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "RTR "+impu+" "+reason)
	return api.Outcome{IMPU: impu, Result: "answered"}
}

func (f *fakeOps) PushProfile(_ context.Context, impu string) api.Outcome {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "PPR "+impu)
	return api.Outcome{IMPU: impu, Result: "queued", Detail: "S-CSCF not connected"}
}

// env is a served API whose every exchange is checked against its own
// OpenAPI document by kin-openapi: each response (status, headers,
// body) must be documented, and the request of each 2xx answer must be
// valid. It records which operations answered 2xx.
type env struct {
	t      *testing.T
	srv    *httptest.Server
	pool   *pgxpool.Pool
	ops    *fakeOps
	reg    *prometheus.Registry
	doc    *openapi3.T
	router routers.Router
	mu     sync.Mutex
	hit    map[string]bool
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dsn, _ := pgtest.Migrated(t)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	tokens := &api.Tokens{}
	if err := tokens.ReadTokens(strings.NewReader("# test tokens\nadmin "+adminToken+" ops\nread "+readToken+" auditor\n"), "tokens"); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, pool: pool, ops: &fakeOps{}, reg: prometheus.NewRegistry(), hit: map[string]bool{}}
	s, err := api.New(api.Config{DB: pool, Ops: e.ops, Tokens: tokens, Registry: e.reg})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(s.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	loader := openapi3.NewLoader()
	if e.doc, err = loader.LoadFromData(raw); err != nil {
		t.Fatalf("load OpenAPI document: %v", err)
	}
	if err := e.doc.Validate(context.Background()); err != nil {
		t.Fatalf("the OpenAPI document is not valid: %v", err)
	}
	if e.router, err = legacy.NewRouter(e.doc); err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(s.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("%v\n%s", err, r.body)
	}
}

func (r resp) problem(t *testing.T) api.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d with Content-Type %q, want application/problem+json:\n%s", r.status, ct, r.body)
	}
	var p api.Problem
	r.json(t, &p)
	if p.Status != r.status {
		t.Fatalf("problem status %d in a %d answer", p.Status, r.status)
	}
	return p
}

// do sends one request (body: JSON of v, or a string sent as is) and
// checks the exchange against the OpenAPI document.
func (e *env) do(method, path, token string, v any, hdr ...string) resp {
	e.t.Helper()
	var body []byte
	ct := "application/json"
	switch x := v.(type) {
	case nil:
	case string:
		body, ct = []byte(x), "text/csv"
	default:
		body, _ = json.Marshal(x)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if v != nil {
		req.Header.Set("Content-Type", ct)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	e.check(req, body, res, out)
	return resp{status: res.StatusCode, header: res.Header, body: out}
}

func (e *env) check(req *http.Request, body []byte, res *http.Response, out []byte) {
	e.t.Helper()
	ctx := context.Background()
	vreq, _ := http.NewRequest(req.Method, req.URL.String(), bytes.NewReader(body))
	vreq.Header = req.Header.Clone()
	route, params, err := e.router.FindRoute(vreq)
	if err != nil {
		if res.StatusCode != 404 && res.StatusCode != 405 {
			e.t.Errorf("%s %s answered %d but is not in the OpenAPI document: %v", req.Method, req.URL.Path, res.StatusCode, err)
		}
		return
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: opts}
	if res.StatusCode < 300 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			e.t.Errorf("%s %s answered %d to a request the OpenAPI document refuses: %v", req.Method, req.URL.Path, res.StatusCode, err)
		}
		e.mu.Lock()
		e.hit[route.Operation.OperationID] = true
		e.mu.Unlock()
	}
	rin := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: res.StatusCode, Header: res.Header,
		Body: io.NopCloser(bytes.NewReader(out)), Options: opts}
	if err := openapi3filter.ValidateResponse(ctx, rin); err != nil {
		e.t.Errorf("%s %s: the answer %d differs from the OpenAPI document: %v\n%s", req.Method, req.URL.Path, res.StatusCode, err, out)
	}
}

func esc(s string) string { return url.PathEscape(s) }

func want(t *testing.T, r resp, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d:\n%s", r.status, status, r.body)
	}
}

// TestAPI runs every operation of the document against a real PostgreSQL
// and fails when one is not exercised (the drift test's other half).
func TestAPI(t *testing.T) {
	e := newEnv(t)
	t.Run("access", func(t *testing.T) {
		r := e.do("GET", "/api/v1/subscribers", "", nil)
		want(t, r, 401)
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("401 without WWW-Authenticate: %v", r.header)
		}
		r.problem(t)
		want(t, e.do("GET", "/api/v1/subscribers", "not-a-token-0123456789", nil), 401)
		r = e.do("POST", "/api/v1/profiles", readToken, map[string]any{"name": "ro"})
		want(t, r, 403)
		if p := r.problem(t); p.Type != api.ProblemRole || !strings.Contains(p.Detail, "auditor") {
			t.Errorf("403 problem %+v", p)
		}
		want(t, e.do("GET", "/api/v1/profiles/ro", adminToken, nil), 404)
		want(t, e.do("GET", "/api/v1/profiles", readToken, nil), 200)
	})
	t.Run("subscribers", func(t *testing.T) { testSubscribers(t, e) })
	t.Run("objects", func(t *testing.T) { testObjects(t, e) })
	t.Run("bulk", func(t *testing.T) { testBulk(t, e) })
	t.Run("openapi.json", func(t *testing.T) {
		res, err := http.Get(e.srv.URL + "/openapi.json")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var doc map[string]any
		if err := json.NewDecoder(res.Body).Decode(&doc); err != nil || doc["openapi"] != "3.0.3" {
			t.Fatalf("/openapi.json: %v %v", err, doc["openapi"])
		}
	})
	t.Run("metrics per route", func(t *testing.T) {
		n := testutil.ToFloat64(requests(t, e.reg, "GET /api/v1/subscribers/{impi}", "GET", "200"))
		if n < 1 {
			t.Errorf("hss_api_requests_total for GET /api/v1/subscribers/{impi} 200: %v", n)
		}
		if n := testutil.ToFloat64(requests(t, e.reg, "GET /api/v1/subscribers", "GET", "401")); n < 1 {
			t.Errorf("hss_api_requests_total for 401: %v", n)
		}
	})
	var missing []string
	for path, item := range e.doc.Paths.Map() {
		for method, o := range item.Operations() {
			if !e.hit[o.OperationID] {
				missing = append(missing, method+" "+path)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("operations of the OpenAPI document no test exercised with success: %s", strings.Join(missing, ", "))
	}
}

func requests(t *testing.T, reg *prometheus.Registry, route, method, code string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "hss_api_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["route"] == route && l["method"] == method && l["code"] == code {
				return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x"}, func() float64 { return m.GetCounter().GetValue() })
			}
		}
	}
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x"}, func() float64 { return 0 })
}

func testSubscribers(t *testing.T, e *env) {
	alice := map[string]any{"impi": "alice@ims.example", "k": k, "op": op, "amf": "8000", "sqn": 0xff9bb4d0b607,
		"impus": []map[string]any{{"identity": "sip:alice@ims.example"}, {"identity": "tel:+1-555-1234"}}}
	r := e.do("POST", "/api/v1/subscribers", adminToken, alice)
	want(t, r, 201)
	if loc := r.header.Get("Location"); loc != "/api/v1/subscribers/alice@ims.example" {
		t.Errorf("Location %q", loc)
	}
	// Secrets are never returned, not even in the answer to their write.
	for _, b := range [][]byte{r.body, e.do("GET", "/api/v1/subscribers/alice@ims.example", readToken, nil).body,
		e.do("GET", "/api/v1/subscribers?q=alice", readToken, nil).body} {
		if bytes.Contains(b, []byte(k)) || bytes.Contains(b, []byte(op)) || bytes.Contains(b, []byte(`"k":`)) ||
			bytes.Contains(b, []byte(`"op":`)) || bytes.Contains(b, []byte(`"sqn":`)) {
			t.Fatalf("a secret in an answer:\n%s", b)
		}
	}
	var got struct {
		HasK   bool   `json:"has_k"`
		OPType string `json:"op_type"`
		IMPUs  []struct {
			Identity    string `json:"identity"`
			ImplicitSet int64  `json:"implicit_set"`
		} `json:"impus"`
	}
	r.json(t, &got)
	if !got.HasK || got.OPType != "op" || len(got.IMPUs) != 2 || got.IMPUs[1].Identity != "tel:+15551234" || got.IMPUs[0].ImplicitSet != got.IMPUs[1].ImplicitSet {
		t.Fatalf("created %s", r.body)
	}
	etag := r.header.Get("ETag")

	t.Run("errors name the field", func(t *testing.T) {
		cases := []struct {
			body    any
			status  int
			pointer string
		}{
			{map[string]any{"impi": "x@ims", "k": k[:30], "op": op, "impus": []map[string]any{{"identity": "sip:x@ims"}}}, 422, "/k"},
			{map[string]any{"impi": "x@ims", "password": "p", "impus": []map[string]any{{"identity": "mailto:x@ims"}}}, 422, "/impus/0/identity"},
			{map[string]any{"impi": "x@ims", "password": "p", "impus": []map[string]any{{"identity": "sip:x@ims", "profile": "gold"}}}, 422, "/impus/0/profile"},
			{map[string]any{"impi": "x@ims", "password": "p", "impus": []map[string]any{{"identity": "sip:x@ims"}, {"identity": "tel:+15551234"}}}, 409, "/impus/1/identity"},
			{map[string]any{"impi": "alice@ims.example", "password": "p", "impus": []map[string]any{{"identity": "sip:x@ims"}}}, 409, "/impi"},
			{map[string]any{"impi": "x@ims", "passwd": "p"}, 400, "/passwd"},
			{map[string]any{"impi": "x@ims", "impus": "sip:x@ims"}, 400, "/impus"},
		}
		for _, c := range cases {
			r := e.do("POST", "/api/v1/subscribers", adminToken, c.body)
			p := r.problem(t)
			if r.status != c.status || len(p.Errors) != 1 || p.Errors[0].Pointer != c.pointer {
				t.Errorf("%v: %d %+v, want %d naming %s", c.body, r.status, p, c.status, c.pointer)
			}
		}
		want(t, e.do("POST", "/api/v1/subscribers", adminToken, "impi\n"), 415)
	})
	t.Run("replace with If-Match", func(t *testing.T) {
		var cur map[string]any
		e.do("GET", "/api/v1/subscribers/alice@ims.example", readToken, nil).json(t, &cur)
		for _, f := range []string{"has_k", "op_type", "has_password"} {
			delete(cur, f) // read-only
		}
		impus := cur["impus"].([]any)
		impus[1].(map[string]any)["barred"] = true
		for _, u := range impus {
			delete(u.(map[string]any), "type")
		}
		cur["impus"] = append(impus, map[string]any{"identity": "sip:alice.work@ims.example", "implicit_set": 999999})
		r := e.do("PUT", "/api/v1/subscribers/alice@ims.example", adminToken, cur, "If-Match", `"stale"`)
		want(t, r, 412)
		if p := r.problem(t); p.Type != api.ProblemETag {
			t.Errorf("412 %+v", p)
		}
		r = e.do("PUT", "/api/v1/subscribers/alice@ims.example", adminToken, cur, "If-Match", etag)
		want(t, r, 200)
		var after struct {
			IMPUs []struct {
				Identity    string `json:"identity"`
				Barred      bool   `json:"barred"`
				ImplicitSet int64  `json:"implicit_set"`
			} `json:"impus"`
		}
		r.json(t, &after)
		if len(after.IMPUs) != 3 || !after.IMPUs[1].Barred || after.IMPUs[0].ImplicitSet != got.IMPUs[0].ImplicitSet ||
			after.IMPUs[2].ImplicitSet == after.IMPUs[0].ImplicitSet {
			t.Fatalf("after replace %s", r.body)
		}
		// K and OP were omitted: kept.
		var kk []byte
		if err := e.pool.QueryRow(context.Background(), `SELECT k FROM impi WHERE identity = 'alice@ims.example'`).Scan(&kk); err != nil || fmt.Sprintf("%x", kk) != k {
			t.Fatalf("K after a replace without it: %x %v", kk, err)
		}
		// The old ETag no longer matches; a new K changes the ETag too.
		want(t, e.do("DELETE", "/api/v1/subscribers/alice@ims.example", adminToken, nil, "If-Match", etag), 412)
		etag2 := r.header.Get("ETag")
		cur["k"] = strings.Repeat("11", 16)
		r = e.do("PUT", "/api/v1/subscribers/alice@ims.example", adminToken, cur, "If-Match", etag2)
		want(t, r, 200)
		if r.header.Get("ETag") == etag2 {
			t.Error("a new K left the ETag unchanged")
		}
		etag = r.header.Get("ETag")
	})
	t.Run("list, filter, page", func(t *testing.T) {
		for i := 0; i < 5; i++ {
			want(t, e.do("POST", "/api/v1/subscribers", adminToken, map[string]any{"impi": fmt.Sprintf("u%d@ims.example", i), "password": "pw",
				"impus": []map[string]any{{"identity": fmt.Sprintf("sip:u%d@ims.example", i)}}}), 201)
		}
		var l struct {
			Items []struct {
				IMPI string `json:"impi"`
			} `json:"items"`
			Next string `json:"next"`
		}
		r := e.do("GET", "/api/v1/subscribers?limit=2&q=u", readToken, nil)
		r.json(t, &l)
		if len(l.Items) != 2 || l.Items[0].IMPI != "u0@ims.example" || l.Next != "u1@ims.example" || !strings.Contains(r.header.Get("Link"), `rel="next"`) {
			t.Fatalf("page 1: %s %v", r.body, r.header)
		}
		r = e.do("GET", "/api/v1/subscribers?limit=2&q=u&after="+l.Next, readToken, nil)
		l.Next = ""
		r.json(t, &l)
		if len(l.Items) != 2 || l.Items[0].IMPI != "u2@ims.example" {
			t.Fatalf("page 2: %+v", l)
		}
		l.Next = ""
		e.do("GET", "/api/v1/subscribers?impu="+url.QueryEscape("tel:+1-555-1234"), readToken, nil).json(t, &l)
		if len(l.Items) != 1 || l.Items[0].IMPI != "alice@ims.example" || l.Next != "" {
			t.Fatalf("by IMPU: %+v", l)
		}
		e.do("GET", "/api/v1/subscribers?registered=true", readToken, nil).json(t, &l)
		if len(l.Items) != 0 {
			t.Fatalf("registered: %+v", l)
		}
		want(t, e.do("GET", "/api/v1/subscribers?limit=0", readToken, nil), 400)
		want(t, e.do("GET", "/api/v1/subscribers?registered=maybe", readToken, nil), 400)
	})
	t.Run("registration and operations", func(t *testing.T) {
		var reg struct {
			SQN   uint64 `json:"sqn"`
			IMPUs []struct {
				State string `json:"state"`
			} `json:"impus"`
		}
		e.do("GET", "/api/v1/subscribers/alice@ims.example/registration", readToken, nil).json(t, &reg)
		if reg.SQN != 0xff9bb4d0b607 || len(reg.IMPUs) != 3 || reg.IMPUs[0].State != "not_registered" {
			t.Fatalf("registration %+v", reg)
		}
		var out api.Outcomes
		e.do("POST", "/api/v1/subscribers/alice@ims.example/deregister", adminToken, map[string]any{}).json(t, &out)
		if len(out.Results) != 1 || out.Results[0].Result != "not_registered" || len(e.ops.calls) != 0 {
			t.Fatalf("deregister of an unregistered subscriber: %+v %v", out, e.ops.calls)
		}
		// As after a SAR: the first implicit set is registered.
		if _, err := e.pool.Exec(context.Background(), `WITH s AS (SELECT implicit_set_id FROM impu WHERE identity = 'sip:alice@ims.example')
			, u AS (UPDATE impu SET user_state = 'registered' WHERE implicit_set_id = (SELECT * FROM s) RETURNING id)
			INSERT INTO scscf_assignment (impu_id, scscf_name, diameter_host) SELECT id, 'sip:scscf.ims:5080', 'scscf.ims' FROM u`); err != nil {
			t.Fatal(err)
		}
		e.do("POST", "/api/v1/subscribers/alice@ims.example/deregister", adminToken, map[string]any{"reason": "operator"}).json(t, &out)
		if len(out.Results) != 1 || out.Results[0].Result != "answered" || len(e.ops.calls) != 1 || e.ops.calls[0] != "RTR sip:alice@ims.example operator" {
			t.Fatalf("deregister: %+v %v", out, e.ops.calls)
		}
		e.do("POST", "/api/v1/subscribers/alice@ims.example/push-profile", adminToken, map[string]any{"impu": "tel:+15551234"}).json(t, &out)
		if len(out.Results) != 1 || out.Results[0].Result != "queued" || e.ops.calls[1] != "PPR tel:+15551234" {
			t.Fatalf("push-profile: %+v %v", out, e.ops.calls)
		}
		want(t, e.do("POST", "/api/v1/subscribers/alice@ims.example/push-profile", adminToken, map[string]any{"impu": "sip:bob@x"}), 422)
		want(t, e.do("POST", "/api/v1/subscribers/alice@ims.example/deregister", readToken, map[string]any{}), 403)
		var q api.Queued
		e.do("POST", "/api/v1/profiles/default/push-profile", adminToken, nil).json(t, &q)
		if q.Commands != 1 {
			t.Fatalf("profile push-profile queued %d", q.Commands)
		}
	})
	t.Run("delete", func(t *testing.T) {
		want(t, e.do("DELETE", "/api/v1/subscribers/alice@ims.example", adminToken, nil, "If-Match", etag), 204)
		want(t, e.do("GET", "/api/v1/subscribers/alice@ims.example", readToken, nil), 404)
		want(t, e.do("DELETE", "/api/v1/subscribers/alice@ims.example", adminToken, nil), 404)
	})
}

// crud creates, reads, lists, replaces (If-Match) and deletes one object.
func crud(t *testing.T, e *env, base, key string, create, replace map[string]any, check func(map[string]any) error) {
	t.Helper()
	r := e.do("POST", base, adminToken, create)
	want(t, r, 201)
	want(t, e.do("POST", base, adminToken, create), 409)
	item := base + "/" + esc(key)
	r = e.do("GET", item, readToken, nil)
	want(t, r, 200)
	etag := r.header.Get("ETag")
	r = e.do("GET", base+"?limit=1000", readToken, nil)
	if !bytes.Contains(r.body, []byte(strings.ReplaceAll(key, "/", `\/`))) {
		t.Fatalf("%s list lacks %s:\n%s", base, key, r.body)
	}
	want(t, e.do("PUT", item, adminToken, replace, "If-Match", `"old"`), 412)
	r = e.do("PUT", item, adminToken, replace, "If-Match", etag)
	want(t, r, 200)
	var got map[string]any
	r.json(t, &got)
	if err := check(got); err != nil {
		t.Fatalf("%s after replace: %v\n%s", item, err, r.body)
	}
}

func testObjects(t *testing.T, e *env) {
	crud(t, e, "/api/v1/application-servers", "mmtel",
		map[string]any{"name": "mmtel", "server_name": "sip:mmtel.ims:5090", "diameter_host": "mmtel.ims",
			"sh_permissions": map[string]any{"RepositoryData": []string{"udr", "pur"}}},
		map[string]any{"name": "mmtel", "server_name": "sip:mmtel.ims:5091", "default_handling": "terminate",
			"sh_permissions": map[string]any{"IMSUserState": []string{"udr", "snr"}}},
		func(m map[string]any) error {
			sh, _ := m["sh_permissions"].(map[string]any)
			if m["server_name"] != "sip:mmtel.ims:5091" || m["default_handling"] != "terminate" || len(sh) != 1 || sh["IMSUserState"] == nil {
				return fmt.Errorf("not replaced")
			}
			return nil
		})
	crud(t, e, "/api/v1/ifcs", "mmtel-orig",
		map[string]any{"name": "mmtel-orig", "priority": 10, "application_server": "mmtel", "spts": []map[string]any{
			{"group": 0, "type": "method", "value": "INVITE"}, {"group": 1, "type": "session_case", "value": "originating"}}},
		map[string]any{"name": "mmtel-orig", "priority": 5, "application_server": "mmtel", "condition_type": "dnf", "spts": []map[string]any{
			{"group": 0, "type": "method", "value": "REGISTER", "registration_types": []string{"initial"}},
			{"group": 1, "type": "sip_header", "value": "Accept-Contact", "content": ".*mmtel.*", "negated": true}}},
		func(m map[string]any) error {
			if m["trigger"] != "(method=REGISTER(initial)) OR (NOT header Accept-Contact~.*mmtel.*)" || m["priority"] != 5.0 {
				return fmt.Errorf("trigger %v", m["trigger"])
			}
			return nil
		})
	r := e.do("POST", "/api/v1/ifcs", adminToken, map[string]any{"name": "bad", "application_server": "mmtel",
		"spts": []map[string]any{{"group": 0, "type": "session_case", "value": "sideways"}}})
	if p := r.problem(t); r.status != 422 || p.Errors[0].Pointer != "/spts/0/value" {
		t.Errorf("bad SPT: %d %+v", r.status, p)
	}
	crud(t, e, "/api/v1/shared-ifc-sets", "3",
		map[string]any{"id": 3, "name": "mmtel-set", "ifcs": []string{"mmtel-orig"}},
		map[string]any{"id": 3, "name": "mmtel-set-2", "ifcs": []string{}},
		func(m map[string]any) error {
			if m["name"] != "mmtel-set-2" || len(m["ifcs"].([]any)) != 0 {
				return fmt.Errorf("not replaced")
			}
			return nil
		})
	crud(t, e, "/api/v1/profiles", "gold",
		map[string]any{"name": "gold", "ifcs": []map[string]any{{"name": "mmtel-orig"}}},
		map[string]any{"name": "gold", "ifcs": []map[string]any{{"name": "mmtel-orig", "priority": 1}}, "shared_ifc_sets": []int{3}, "subscribed_media_profile_id": 7},
		func(m map[string]any) error {
			f := m["ifcs"].([]any)
			if len(f) != 1 || f[0].(map[string]any)["priority"] != 1.0 || m["subscribed_media_profile_id"] != 7.0 || len(m["shared_ifc_sets"].([]any)) != 1 {
				return fmt.Errorf("not replaced")
			}
			return nil
		})
	crud(t, e, "/api/v1/scscfs", "sip:scscf.ims:5080",
		map[string]any{"name": "sip:scscf.ims:5080", "diameter_host": "scscf.ims", "mandatory_capabilities": []int{1}},
		map[string]any{"name": "sip:scscf.ims:5080", "diameter_host": "scscf2.ims", "optional_capabilities": []int{2, 3}},
		func(m map[string]any) error {
			if m["diameter_host"] != "scscf2.ims" || len(m["optional_capabilities"].([]any)) != 2 || len(m["mandatory_capabilities"].([]any)) != 0 {
				return fmt.Errorf("not replaced")
			}
			return nil
		})
	// In use: refused with 409, then deleted in order.
	want(t, e.do("POST", "/api/v1/subscribers", adminToken, map[string]any{"impi": "g@ims", "password": "pw",
		"impus": []map[string]any{{"identity": "sip:g@ims", "profile": "gold"}}}), 201)
	want(t, e.do("DELETE", "/api/v1/profiles/gold", adminToken, nil), 409)
	want(t, e.do("DELETE", "/api/v1/application-servers/mmtel", adminToken, nil), 409)
	want(t, e.do("DELETE", "/api/v1/subscribers/g@ims", adminToken, nil), 204)
	for _, p := range []string{"/api/v1/profiles/gold", "/api/v1/shared-ifc-sets/3", "/api/v1/ifcs/mmtel-orig",
		"/api/v1/application-servers/mmtel", "/api/v1/scscfs/" + esc("sip:scscf.ims:5080")} {
		want(t, e.do("DELETE", p, adminToken, nil), 204)
		want(t, e.do("GET", p, readToken, nil), 404)
	}
}

func testBulk(t *testing.T, e *env) {
	r := e.do("POST", "/api/v1/subscribers.csv", adminToken, "impi,impu,k,op\nb1@ims,sip:b1@ims tel:+2001,"+k+","+op+"\nb2@ims,sip:b2@ims,"+k[:31]+","+op+"\n")
	p := r.problem(t)
	if r.status != 422 || len(p.Errors) != 1 || p.Errors[0].Pointer != "/line/3/k" || !strings.Contains(p.Detail, "line 3") {
		t.Fatalf("bad CSV: %d %+v", r.status, p)
	}
	r = e.do("POST", "/api/v1/subscribers.csv", adminToken, "impi,impu,k,op\nb1@ims,sip:b1@ims tel:+2001,"+k+","+op+"\nb2@ims,sip:b2@ims,"+k+","+op+"\n")
	var imp api.Imported
	r.json(t, &imp)
	if imp.Imported != 2 {
		t.Fatalf("import: %s", r.body)
	}
	r = e.do("GET", "/api/v1/subscribers.csv", readToken, nil)
	if !strings.HasPrefix(string(r.body), "impi,impu,imsu,") || !strings.Contains(string(r.body), "b1@ims,sip:b1@ims tel:+2001,b1@ims,8000,") ||
		strings.Contains(string(r.body), k) {
		t.Fatalf("export:\n%s", r.body)
	}
	want(t, e.do("POST", "/api/v1/subscribers.csv", readToken, "impi,impu\n"), 403)
}
