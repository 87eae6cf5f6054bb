package api

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/imscore/imscore/hss/provision"
)

// route is one API operation: the mux pattern, what the OpenAPI document
// says of it, and its handler. The document is generated from these.
type route struct {
	method, path string
	id, summary  string
	tag          string
	role         Role
	in           reflect.Type // request body (JSON), nil when none
	inCSV        bool         // the request body is text/csv
	out          reflect.Type // response body (JSON), nil when none
	outCSV       bool         // the response body is text/csv
	status       int          // success status
	params       []param
	etag         bool // the response carries an ETag
	ifMatch      bool // honours If-Match
	errors       []int
	h            handlerFunc
}

// param is a path or query parameter.
type param struct {
	name, in, typ, doc string
}

func typeOf[T any]() reflect.Type { return reflect.TypeOf((*T)(nil)).Elem() }

var listParams = []param{
	{"limit", "query", "integer", "page size, 1..1000 (default 100)"},
	{"after", "query", "string", "the next value of the previous page"},
	{"q", "query", "string", "case-insensitive substring of the key"},
}

// resource describes one kind of provisioned object to the generic
// handlers.
type resource[T any] struct {
	name, plural, tag string
	key               string // path parameter
	keyDoc            string
	keyOf             func(T) string
	get               func(context.Context, provision.DB, string) (T, error)
	list              func(context.Context, provision.DB, *http.Request, provision.ListOptions) ([]T, bool, error)
	create            func(context.Context, provision.DB, T) (T, error)
	replace           func(context.Context, provision.DB, string, T, provision.Check[T]) (T, error)
	del               func(context.Context, provision.DB, string, provision.Check[T]) error
	secrets           func(T) []byte
	extraParams       []param
}

func (res resource[T]) routes(s *Server) []*route {
	base := "/api/v1/" + res.plural
	item := base + "/{" + res.key + "}"
	keyParam := param{res.key, "path", "string", res.keyDoc}
	tT, tList := typeOf[T](), typeOf[List[T]]()
	title := strings.ToUpper(res.name[:1]) + res.name[1:]
	return []*route{
		{method: "GET", path: base, id: "list" + camel(res.plural), summary: "List " + res.plural + " (ordered by " + res.key + ")",
			tag: res.tag, role: RoleRead, out: tList, status: 200, params: append(append([]param{}, listParams...), res.extraParams...),
			errors: []int{400},
			h: func(w http.ResponseWriter, r *http.Request) (int, any, error) {
				o, err := listOptions(r)
				if err != nil {
					return 0, nil, err
				}
				items, more, err := res.list(r.Context(), s.cfg.DB, r, o)
				if err != nil {
					return 0, nil, err
				}
				return page(w, r, items, more, res.keyOf)
			}},
		{method: "POST", path: base, id: "create" + camel(res.name), summary: "Create a " + res.name,
			tag: res.tag, role: RoleAdmin, in: tT, out: tT, status: 201, etag: true, errors: []int{400, 409, 415, 422},
			h: func(w http.ResponseWriter, r *http.Request) (int, any, error) {
				var v T
				if err := decodeJSON(r, &v); err != nil {
					return 0, nil, err
				}
				out, err := res.create(r.Context(), s.cfg.DB, v)
				if err != nil {
					return 0, nil, err
				}
				w.Header().Set("Location", base+"/"+escapePath(res.keyOf(out)))
				w.Header().Set("ETag", s.etag(out, res.secretsOf(out)))
				return 201, out, nil
			}},
		{method: "GET", path: item, id: "get" + camel(res.name), summary: "Read a " + res.name,
			tag: res.tag, role: RoleRead, out: tT, status: 200, params: []param{keyParam}, etag: true, errors: []int{404},
			h: func(w http.ResponseWriter, r *http.Request) (int, any, error) {
				out, err := res.get(r.Context(), s.cfg.DB, r.PathValue(res.key))
				if err != nil {
					return 0, nil, err
				}
				w.Header().Set("ETag", s.etag(out, res.secretsOf(out)))
				return 200, out, nil
			}},
		{method: "PUT", path: item, id: "replace" + camel(res.name), summary: title + ": replace (If-Match: the ETag read)",
			tag: res.tag, role: RoleAdmin, in: tT, out: tT, status: 200, params: []param{keyParam}, etag: true, ifMatch: true,
			errors: []int{400, 404, 409, 412, 415, 422},
			h: func(w http.ResponseWriter, r *http.Request) (int, any, error) {
				var v T
				if err := decodeJSON(r, &v); err != nil {
					return 0, nil, err
				}
				out, err := res.replace(r.Context(), s.cfg.DB, r.PathValue(res.key), v, ifMatch(s, r, res.secrets))
				if err != nil {
					return 0, nil, err
				}
				w.Header().Set("ETag", s.etag(out, res.secretsOf(out)))
				return 200, out, nil
			}},
		{method: "DELETE", path: item, id: "delete" + camel(res.name), summary: title + ": delete (If-Match: the ETag read)",
			tag: res.tag, role: RoleAdmin, status: 204, params: []param{keyParam}, ifMatch: true, errors: []int{404, 409, 412},
			h: func(w http.ResponseWriter, r *http.Request) (int, any, error) {
				if err := res.del(r.Context(), s.cfg.DB, r.PathValue(res.key), ifMatch(s, r, res.secrets)); err != nil {
					return 0, nil, err
				}
				return 204, nil, nil
			}},
	}
}

func (res resource[T]) secretsOf(v T) []byte {
	if res.secrets == nil {
		return nil
	}
	return res.secrets(v)
}

func camel(s string) string {
	var b strings.Builder
	up := true
	for _, c := range s {
		if c == '-' || c == ' ' || c == '_' {
			up = true
			continue
		}
		if up {
			b.WriteString(strings.ToUpper(string(c)))
			up = false
		} else {
			b.WriteRune(c)
		}
	}
	return b.String()
}

func escapePath(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "%", "%25"), "/", "%2F")
}

func boolParam(r *http.Request, name string) (*bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil, &problemError{Problem{Type: ProblemInvalid, Title: http.StatusText(400), Status: 400,
			Detail: fmt.Sprintf("%s %q: want true or false", name, v), Errors: []FieldError{{Pointer: "/" + name, Detail: "want true or false"}}}}
	}
	return &b, nil
}

// DeregisterRequest is the body of the deregister operation.
type DeregisterRequest struct {
	Reason string `json:"reason,omitempty" doc:"Reason-Info text; permanent (default), new-server, server-change or remove-scscf choose the Reason-Code"`
	IMPU   string `json:"impu,omitempty" doc:"only the implicit registration set of this IMPU (default: every registered set of the subscriber)"`
}

// PushProfileRequest is the body of the push-profile operation.
type PushProfileRequest struct {
	IMPU string `json:"impu,omitempty" doc:"only the implicit registration set of this IMPU (default: every assigned set of the subscriber)"`
}

// Outcomes is the answer of an operation.
type Outcomes struct {
	Results []Outcome `json:"results" required:"true" doc:"one per implicit registration set"`
}

// Queued is the answer of the profile-wide push-profile.
type Queued struct {
	Commands int `json:"commands" required:"true" doc:"PPR commands queued in hss_command (one per assigned implicit registration set)"`
}

// Imported is the answer of a CSV import.
type Imported struct {
	Imported int `json:"imported" required:"true" doc:"subscribers added"`
}

func (s *Server) apiRoutes() []*route {
	var rs []*route
	subs := resource[provision.SubscriberRecord]{
		name: "subscriber", plural: "subscribers", tag: "subscribers", key: "impi", keyDoc: "the IMPI",
		keyOf: func(r provision.SubscriberRecord) string { return r.IMPI },
		get:   provision.GetSubscriber,
		list: func(ctx context.Context, db provision.DB, r *http.Request, o provision.ListOptions) ([]provision.SubscriberRecord, bool, error) {
			reg, err := boolParam(r, "registered")
			if err != nil {
				return nil, false, err
			}
			q := r.URL.Query()
			return provision.ListSubscriberRecords(ctx, db, provision.SubscriberFilter{ListOptions: o,
				IMPU: q.Get("impu"), Profile: q.Get("profile"), IMSU: q.Get("imsu"), Registered: reg})
		},
		create:  provision.CreateSubscriber,
		replace: provision.ReplaceSubscriber,
		del: func(ctx context.Context, db provision.DB, key string, c provision.Check[provision.SubscriberRecord]) error {
			_, err := provision.RemoveSubscriber(ctx, db, key, c)
			return err
		},
		secrets: provision.SubscriberRecord.Secrets,
		extraParams: []param{
			{"impu", "query", "string", "only the IMPI(s) of this IMPU"},
			{"profile", "query", "string", "only subscribers with an IMPU of this service profile"},
			{"imsu", "query", "string", "only the IMPIs of this subscription"},
			{"registered", "query", "boolean", "only subscribers with (true) or without (false) a registered IMPU"},
		},
	}
	rs = append(rs, subs.routes(s)...)
	impi := param{"impi", "path", "string", "the IMPI"}
	rs = append(rs,
		&route{method: "GET", path: "/api/v1/subscribers/{impi}/registration", id: "getRegistration", tag: "subscribers",
			summary: "Registration state: per IMPU the state and the assigned S-CSCF; the SQN", role: RoleRead,
			out: typeOf[provision.Registration](), status: 200, params: []param{impi}, errors: []int{404},
			h: func(w http.ResponseWriter, r *http.Request) (int, any, error) {
				reg, err := provision.GetRegistration(r.Context(), s.cfg.DB, r.PathValue("impi"))
				return 200, reg, err
			}},
		&route{method: "POST", path: "/api/v1/subscribers/{impi}/deregister", id: "deregister", tag: "operations",
			summary: "De-register the subscriber: RTR to the S-CSCF of each registered implicit set (TS 29.228 §6.1.3)", role: RoleAdmin,
			in: typeOf[DeregisterRequest](), out: typeOf[Outcomes](), status: 200, params: []param{impi}, errors: []int{400, 404, 415, 422, 503},
			h: func(w http.ResponseWriter, r *http.Request) (int, any, error) {
				var req DeregisterRequest
				if err := decodeJSON(r, &req); err != nil {
					return 0, nil, err
				}
				return s.operate(r, req.IMPU, true, func(ctx context.Context, impu string) Outcome {
					return s.cfg.Ops.Deregister(ctx, impu, req.Reason)
				})
			}},
		&route{method: "POST", path: "/api/v1/subscribers/{impi}/push-profile", id: "pushProfile", tag: "operations",
			summary: "Push the current profile: PPR to the S-CSCF of each assigned implicit set (TS 29.228 §6.2.2)", role: RoleAdmin,
			in: typeOf[PushProfileRequest](), out: typeOf[Outcomes](), status: 200, params: []param{impi}, errors: []int{400, 404, 415, 422, 503},
			h: func(w http.ResponseWriter, r *http.Request) (int, any, error) {
				var req PushProfileRequest
				if err := decodeJSON(r, &req); err != nil {
					return 0, nil, err
				}
				return s.operate(r, req.IMPU, false, s.cfg.Ops.PushProfile)
			}},
		&route{method: "POST", path: "/api/v1/subscribers.csv", id: "importSubscribers", tag: "bulk", inCSV: true,
			summary: "Import subscribers from CSV (imsctl's format; all or nothing; errors name the line)", role: RoleAdmin,
			out: typeOf[Imported](), status: 200, errors: []int{409, 415, 422},
			h: func(w http.ResponseWriter, r *http.Request) (int, any, error) {
				if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
					return 0, nil, problem(415, "", "send text/csv, not %q", ct)
				}
				n, err := provision.ImportCSV(r.Context(), s.cfg.DB, r.Body)
				return 200, Imported{Imported: n}, err
			}},
		&route{method: "GET", path: "/api/v1/subscribers.csv", id: "exportSubscribers", tag: "bulk", outCSV: true,
			summary: "Export every subscriber as CSV (imsctl's format, without secrets)", role: RoleRead, status: 200,
			h: func(w http.ResponseWriter, r *http.Request) (int, any, error) {
				// Streamed as PostgreSQL sends it: a failure half-way ends
				// the response early (the client sees a truncated body).
				err := s.withConn(r.Context(), func(c *pgx.Conn) error {
					w.Header().Set("Content-Type", "text/csv; charset=utf-8")
					w.Header().Set("Content-Disposition", `attachment; filename="subscribers.csv"`)
					_, err := provision.ExportCSV(r.Context(), c, &lazyWriter{w: w}, false)
					return err
				})
				if err != nil && !wroteBody(w) {
					return 0, nil, err
				}
				if err != nil {
					s.log.Warn("subscriber export ended early", zap.Error(err))
				}
				return 200, streamed{}, nil
			}},
	)
	rs = append(rs, resource[provision.Profile]{
		name: "profile", plural: "profiles", tag: "profiles", key: "name", keyDoc: "service profile name",
		keyOf: func(p provision.Profile) string { return p.Name }, get: provision.GetProfile,
		list:   byOptions(provision.ListProfiles),
		create: provision.CreateProfile, replace: provision.ReplaceProfile, del: provision.DeleteProfile,
	}.routes(s)...)
	rs = append(rs, &route{method: "POST", path: "/api/v1/profiles/{name}/push-profile", id: "pushProfileOfProfile", tag: "operations",
		summary: "Queue a PPR for every assigned implicit set using the profile (after it or its iFCs changed)", role: RoleAdmin,
		out: typeOf[Queued](), status: 202, params: []param{{"name", "path", "string", "service profile name"}}, errors: []int{404},
		h: func(w http.ResponseWriter, r *http.Request) (int, any, error) {
			ids, err := provision.PushProfileOf(r.Context(), s.cfg.DB, r.PathValue("name"))
			return 202, Queued{Commands: len(ids)}, err
		}})
	rs = append(rs, resource[provision.IFC]{
		name: "ifc", plural: "ifcs", tag: "ifcs", key: "name", keyDoc: "iFC name",
		keyOf: func(f provision.IFC) string { return f.Name }, get: provision.GetIFC,
		list: byOptions(provision.ListIFCs),
		create: func(ctx context.Context, db provision.DB, f provision.IFC) (provision.IFC, error) {
			return provision.CreateIFC(ctx, db, f)
		},
		replace: provision.ReplaceIFC, del: provision.DeleteIFC,
	}.routes(s)...)
	rs = append(rs, resource[provision.SharedIFCSet]{
		name: "shared-ifc-set", plural: "shared-ifc-sets", tag: "ifcs", key: "id", keyDoc: "SharedIFCSetID",
		keyOf: func(x provision.SharedIFCSet) string { return strconv.Itoa(int(x.ID)) },
		get: func(ctx context.Context, db provision.DB, key string) (provision.SharedIFCSet, error) {
			id, err := setID(key)
			if err != nil {
				return provision.SharedIFCSet{}, err
			}
			return provision.GetSharedIFCSet(ctx, db, id)
		},
		list:   byOptions(provision.ListSharedIFCSets),
		create: provision.CreateSharedIFCSet,
		replace: func(ctx context.Context, db provision.DB, key string, x provision.SharedIFCSet, c provision.Check[provision.SharedIFCSet]) (provision.SharedIFCSet, error) {
			id, err := setID(key)
			if err != nil {
				return provision.SharedIFCSet{}, err
			}
			return provision.ReplaceSharedIFCSet(ctx, db, id, x, c)
		},
		del: func(ctx context.Context, db provision.DB, key string, c provision.Check[provision.SharedIFCSet]) error {
			id, err := setID(key)
			if err != nil {
				return err
			}
			return provision.DeleteSharedIFCSet(ctx, db, id, c)
		},
	}.routes(s)...)
	rs = append(rs, resource[provision.AppServer]{
		name: "application-server", plural: "application-servers", tag: "application servers", key: "name", keyDoc: "application server name",
		keyOf: func(a provision.AppServer) string { return a.Name }, get: provision.GetAS,
		list:   byOptions(provision.ListAS),
		create: provision.CreateAS, replace: provision.ReplaceAS, del: provision.DeleteAS,
	}.routes(s)...)
	rs = append(rs, resource[provision.SCSCF]{
		name: "scscf", plural: "scscfs", tag: "S-CSCFs", key: "name", keyDoc: "the S-CSCF's SIP URI",
		keyOf: func(x provision.SCSCF) string { return x.Name }, get: provision.GetSCSCF,
		list:   byOptions(provision.ListSCSCFs),
		create: provision.CreateSCSCF, replace: provision.ReplaceSCSCF, del: provision.DeleteSCSCF,
	}.routes(s)...)
	return rs
}

// byOptions adapts a list operation that takes only the paging options.
func byOptions[T any](f func(context.Context, provision.DB, provision.ListOptions) ([]T, bool, error)) func(context.Context, provision.DB, *http.Request, provision.ListOptions) ([]T, bool, error) {
	return func(ctx context.Context, db provision.DB, _ *http.Request, o provision.ListOptions) ([]T, bool, error) {
		return f(ctx, db, o)
	}
}

// lazyWriter writes the 200 status with the first byte, so that an
// error before any data can still be answered as a problem.
type lazyWriter struct {
	w       http.ResponseWriter
	started bool
}

func (l *lazyWriter) Write(b []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.WriteHeader(200)
	}
	return l.w.Write(b)
}

// wroteBody reports whether the response has begun.
func wroteBody(w http.ResponseWriter) bool {
	sw, ok := w.(*statusWriter)
	return ok && sw.code != 0
}

func setID(key string) (int32, error) {
	n, err := strconv.ParseInt(key, 10, 32)
	if err != nil || n < 0 {
		return 0, problem(404, "", "no shared iFC set %q (ids are non-negative integers)", key)
	}
	return int32(n), nil
}

func (s *Server) withConn(ctx context.Context, fn func(*pgx.Conn) error) error {
	switch db := s.cfg.DB.(type) {
	case *pgxpool.Pool:
		c, err := db.Acquire(ctx)
		if err != nil {
			return err
		}
		defer c.Release()
		return fn(c.Conn())
	case *pgx.Conn:
		return fn(db)
	}
	return fmt.Errorf("api: export needs a pool or a connection, not %T", s.cfg.DB)
}

// operate runs op on one IMPU of each implicit registration set of the
// subscriber that has an S-CSCF (registered sets only when registered),
// or only on impu's set.
func (s *Server) operate(r *http.Request, impu string, registered bool, op func(context.Context, string) Outcome) (int, any, error) {
	if s.cfg.Ops == nil {
		return 0, nil, problem(503, "", "this HSS runs the API without its Diameter node")
	}
	reg, err := provision.GetRegistration(r.Context(), s.cfg.DB, r.PathValue("impi"))
	if err != nil {
		return 0, nil, err
	}
	var targets []string
	seen := map[int64]bool{}
	found := false
	for _, u := range reg.IMPUs {
		if impu != "" {
			if u.Identity == impu {
				targets, found = []string{u.Identity}, true
			}
			continue
		}
		if seen[u.ImplicitSet] || u.SCSCF == "" || (registered && u.State != "registered") {
			continue
		}
		seen[u.ImplicitSet] = true
		targets = append(targets, u.Identity)
	}
	if impu != "" && !found {
		return 0, nil, &provision.UserError{Field: "/impu", Msg: fmt.Sprintf("IMPU %s is not one of the subscriber's", impu)}
	}
	out := Outcomes{Results: []Outcome{}}
	for _, t := range targets {
		o := op(r.Context(), t)
		if o.Err != nil {
			return 0, nil, o.Err
		}
		out.Results = append(out.Results, o)
	}
	if len(out.Results) == 0 {
		out.Results = append(out.Results, Outcome{IMPU: firstIMPU(reg), Result: "not_registered", Detail: "no S-CSCF serves the subscriber"})
	}
	return 200, out, nil
}

func firstIMPU(reg provision.Registration) string {
	if len(reg.IMPUs) > 0 {
		return reg.IMPUs[0].Identity
	}
	return ""
}
