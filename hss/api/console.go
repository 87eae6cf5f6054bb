package api

// The web console: server-rendered HTML pages (html/template, embedded)
// on the API's listener under /console/. It signs in with a bearer token
// (kept in an HttpOnly, SameSite=Strict cookie), and reads and writes
// through hss/provision and the same Operations as the API. Forms carry a
// token derived from the session (CSRF).

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/imscore/imscore/hss/provision"
)

//go:embed console.html
var consoleFS embed.FS

const cookieName = "hss_console"

type console struct {
	s    *Server
	tmpl *template.Template
}

func newConsole(s *Server) *console {
	t := template.Must(template.New("").Funcs(template.FuncMap{
		"join": strings.Join,
		"path": url.PathEscape,
		"impuLines": func(us []provision.PublicIdentity) string {
			var b strings.Builder
			for _, u := range us {
				b.WriteString(u.Identity)
				if u.Barred {
					b.WriteString(" barred")
				}
				if u.Profile != "" && u.Profile != "default" {
					b.WriteString(" profile=" + u.Profile)
				}
				if u.ImplicitSet != 0 {
					fmt.Fprintf(&b, " set=%d", u.ImplicitSet)
				}
				b.WriteString("\n")
			}
			return b.String()
		},
		"ifcList": func(fs []provision.ProfileIFC) string {
			var out []string
			for _, f := range fs {
				if f.Priority != nil {
					out = append(out, fmt.Sprintf("%s:%d", f.Name, *f.Priority))
				} else {
					out = append(out, f.Name)
				}
			}
			return strings.Join(out, ", ")
		},
		"ints": func(xs []int32) string {
			var out []string
			for _, x := range xs {
				out = append(out, strconv.Itoa(int(x)))
			}
			return strings.Join(out, ", ")
		},
		"shLines": func(m map[string][]string) string {
			var refs []string
			for r := range m {
				refs = append(refs, r)
			}
			sort.Strings(refs)
			var b strings.Builder
			for _, r := range refs {
				fmt.Fprintf(&b, "%s=%s\n", r, strings.Join(m[r], ","))
			}
			return b.String()
		},
		"sptLines": func(spts []provision.SPT) string {
			var b strings.Builder
			kinds := map[string]string{"method": "method", "request_uri": "ruri", "sip_header": "header",
				"session_case": "session-case", "session_description": "sdp"}
			for _, s := range spts {
				fmt.Fprintf(&b, "%s %d:", kinds[s.Type], s.Group)
				if s.Negated {
					b.WriteString("!")
				}
				b.WriteString(s.Value)
				if s.Content != nil {
					b.WriteString("=" + *s.Content)
				}
				b.WriteString("\n")
				if len(s.RegistrationTypes) > 0 {
					fmt.Fprintf(&b, "registration-type %s\n", strings.Join(s.RegistrationTypes, ","))
				}
			}
			return b.String()
		},
	}).ParseFS(consoleFS, "console.html"))
	return &console{s: s, tmpl: t}
}

func (c *console) register(mux *http.ServeMux) {
	h := func(pattern string, fn func(w http.ResponseWriter, r *http.Request, sess *session) error) {
		mux.Handle(pattern, c.s.instrument(pattern, c.page(fn)))
	}
	mux.Handle("GET /console/login", c.s.instrument("GET /console/login", http.HandlerFunc(c.loginForm)))
	mux.Handle("POST /console/login", c.s.instrument("POST /console/login", http.HandlerFunc(c.login)))
	h("POST /console/logout", func(w http.ResponseWriter, r *http.Request, _ *session) error {
		http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/console/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
		http.Redirect(w, r, "/console/login", http.StatusSeeOther)
		return nil
	})
	h("GET /console/{$}", func(w http.ResponseWriter, r *http.Request, _ *session) error {
		http.Redirect(w, r, "/console/subscribers", http.StatusSeeOther)
		return nil
	})
	h("GET /console/subscribers", c.subscribers)
	h("GET /console/subscribers/new", c.newSubscriber)
	h("POST /console/subscribers/new", c.createSubscriber)
	h("GET /console/subscribers/{impi}", c.subscriber)
	h("POST /console/subscribers/{impi}", c.updateSubscriber)
	h("POST /console/subscribers/{impi}/delete", c.deleteSubscriber)
	h("POST /console/subscribers/{impi}/deregister", c.operation(true))
	h("POST /console/subscribers/{impi}/push-profile", c.operation(false))
	h("GET /console/profiles", c.show(c.profilesPage()))
	h("POST /console/profiles", save(c, c.profilesPage(), profileFromForm, provision.CreateProfile, provision.ReplaceProfile))
	h("POST /console/profiles/{name}/delete", c.deleteObject("profiles", func(ctx context.Context, db provision.DB, n string) error {
		return provision.DeleteProfile(ctx, db, n, nil)
	}))
	h("GET /console/ifcs", c.show(c.ifcsPage()))
	h("POST /console/ifcs", save(c, c.ifcsPage(), ifcFromForm, func(ctx context.Context, db provision.DB, f provision.IFC) (provision.IFC, error) {
		return provision.CreateIFC(ctx, db, f)
	}, provision.ReplaceIFC))
	h("POST /console/ifcs/{name}/delete", c.deleteObject("ifcs", func(ctx context.Context, db provision.DB, n string) error {
		return provision.DeleteIFC(ctx, db, n, nil)
	}))
	h("GET /console/application-servers", c.show(c.asPage()))
	h("POST /console/application-servers", save(c, c.asPage(), asFromForm, provision.CreateAS, provision.ReplaceAS))
	h("POST /console/application-servers/{name}/delete", c.deleteObject("application-servers", func(ctx context.Context, db provision.DB, n string) error {
		return provision.DeleteAS(ctx, db, n, nil)
	}))
}

// session is a signed-in console user.
type session struct {
	Role Role
	Name string
	CSRF string
}

func (c *console) csrfOf(tok string) string {
	m := hmac.New(sha256.New, c.s.key)
	m.Write([]byte("csrf\x00" + tok))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// page wraps a console handler: a session from the cookie (else the login
// page), the CSRF check and the admin role on POST, errors as a page.
func (c *console) page(fn func(w http.ResponseWriter, r *http.Request, sess *session) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(cookieName)
		var role Role
		var name string
		if err == nil {
			role, name = c.s.cfg.Tokens.Lookup(ck.Value)
		}
		if role == RoleNone {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/console/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.render(w, http.StatusUnauthorized, "error", map[string]any{"Status": 401, "Message": "sign in first"})
			return
		}
		sess := &session{Role: role, Name: name, CSRF: c.csrfOf(ck.Value)}
		w.Header().Set("Cache-Control", "no-store")
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				c.render(w, 400, "error", map[string]any{"Status": 400, "Message": err.Error(), "S": sess})
				return
			}
			if !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(sess.CSRF)) {
				c.render(w, 403, "error", map[string]any{"Status": 403, "Message": "the form is stale or not from this console; reload the page", "S": sess})
				return
			}
			if role < RoleAdmin {
				c.render(w, 403, "error", map[string]any{"Status": 403, "Message": "token " + name + " is read-only", "S": sess})
				return
			}
		}
		if err := fn(w, r, sess); err != nil {
			p := toProblem(err)
			if p.Status >= 500 {
				c.s.log.Warn("console request failed", zap.String("path", r.URL.Path), zap.Error(err))
			}
			c.render(w, p.Status, "error", map[string]any{"Status": p.Status, "Message": p.Detail, "S": sess})
		}
	})
}

func (c *console) render(w http.ResponseWriter, status int, name string, data map[string]any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := c.tmpl.ExecuteTemplate(w, name, data); err != nil {
		c.s.log.Warn("console template", zap.String("template", name), zap.Error(err))
	}
}

func (c *console) loginForm(w http.ResponseWriter, r *http.Request) {
	c.render(w, 200, "login", map[string]any{"Next": r.URL.Query().Get("next")})
}

func (c *console) login(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	tok := strings.TrimSpace(r.PostForm.Get("token"))
	if role, _ := c.s.cfg.Tokens.Lookup(tok); role == RoleNone {
		c.render(w, http.StatusUnauthorized, "login", map[string]any{"Error": "unknown token", "Next": r.PostForm.Get("next")})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: tok, Path: "/console/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: c.s.cfg.Secure})
	next := r.PostForm.Get("next")
	if !strings.HasPrefix(next, "/console/") || strings.HasPrefix(next, "//") {
		next = "/console/subscribers"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// subRow is one line of the subscriber list.
type subRow struct {
	provision.SubscriberRecord
	Registered bool
}

func (c *console) subscribers(w http.ResponseWriter, r *http.Request, sess *session) error {
	q := r.URL.Query()
	f := provision.SubscriberFilter{ListOptions: provision.ListOptions{Query: q.Get("q"), After: q.Get("after"), Limit: 50}}
	list, more, err := provision.ListSubscriberRecords(r.Context(), c.s.cfg.DB, f)
	if err != nil {
		return err
	}
	var rows []subRow
	for _, s := range list {
		reg, err := provision.GetRegistration(r.Context(), c.s.cfg.DB, s.IMPI)
		if err != nil {
			return err
		}
		rows = append(rows, subRow{SubscriberRecord: s, Registered: reg.Registered})
	}
	next := ""
	if more {
		next = list[len(list)-1].IMPI
	}
	c.render(w, 200, "subscribers", map[string]any{"S": sess, "Rows": rows, "Q": f.Query, "Next": next})
	return nil
}

func (c *console) newSubscriber(w http.ResponseWriter, r *http.Request, sess *session) error {
	c.render(w, 200, "subscriber", map[string]any{"S": sess, "New": true, "Sub": provision.SubscriberRecord{}, "Kind": "aka"})
	return nil
}

// subscriberFromForm reads the subscriber form. IMPU lines are
// "URI [barred] [profile=NAME] [set=N]".
func subscriberFromForm(r *http.Request) (provision.SubscriberRecord, error) {
	f := r.PostForm
	s := provision.SubscriberRecord{IMPI: strings.TrimSpace(f.Get("impi")), IMSU: strings.TrimSpace(f.Get("imsu")),
		AMF: strings.TrimSpace(f.Get("amf")), DigestRealm: strings.TrimSpace(f.Get("realm")),
		PreferredSCSCF: strings.TrimSpace(f.Get("preferred_scscf")), K: strings.TrimSpace(f.Get("k")),
		Password: f.Get("password")}
	switch f.Get("op_type") {
	case "opc":
		s.OPc = strings.TrimSpace(f.Get("op"))
	default:
		s.OP = strings.TrimSpace(f.Get("op"))
	}
	if v := strings.TrimSpace(f.Get("sqn")); v != "" {
		n, err := strconv.ParseUint(v, 0, 64)
		if err != nil {
			return s, &provision.UserError{Field: "/sqn", Msg: fmt.Sprintf("SQN %q is not a number", v)}
		}
		s.SQN = &n
	}
	s.AuthSchemes = strings.FieldsFunc(f.Get("auth_schemes"), func(r rune) bool { return r == ',' || r == ' ' })
	for i, line := range strings.Split(f.Get("impus"), "\n") {
		fs := strings.Fields(line)
		if len(fs) == 0 {
			continue
		}
		u := provision.PublicIdentity{Identity: fs[0]}
		for _, x := range fs[1:] {
			switch {
			case x == "barred":
				u.Barred = true
			case strings.HasPrefix(x, "profile="):
				u.Profile = strings.TrimPrefix(x, "profile=")
			case strings.HasPrefix(x, "set="):
				n, err := strconv.ParseInt(strings.TrimPrefix(x, "set="), 10, 64)
				if err != nil {
					return s, &provision.UserError{Field: "/impus", Msg: fmt.Sprintf("IMPU line %d: set=%q is not a number", i+1, x)}
				}
				u.ImplicitSet = n
			default:
				return s, &provision.UserError{Field: "/impus", Msg: fmt.Sprintf("IMPU line %d: %q (want URI [barred] [profile=NAME] [set=N])", i+1, x)}
			}
		}
		s.IMPUs = append(s.IMPUs, u)
	}
	return s, nil
}

// formError shows the form again with the error when it is the operator's.
func (c *console) formError(w http.ResponseWriter, err error, tmpl string, data map[string]any) error {
	var ue *provision.UserError
	var pe *problemError
	if !errors.As(err, &ue) && !errors.As(err, &pe) {
		return err
	}
	p := toProblem(err)
	data["Error"] = p.Detail
	c.render(w, p.Status, tmpl, data)
	return nil
}

func (c *console) createSubscriber(w http.ResponseWriter, r *http.Request, sess *session) error {
	s, err := subscriberFromForm(r)
	if err == nil {
		_, err = provision.CreateSubscriber(r.Context(), c.s.cfg.DB, s)
	}
	if err != nil {
		return c.formError(w, err, "subscriber", map[string]any{"S": sess, "New": true, "Sub": s, "Kind": r.PostForm.Get("op_type")})
	}
	http.Redirect(w, r, "/console/subscribers/"+url.PathEscape(s.IMPI)+"?done=added", http.StatusSeeOther)
	return nil
}

func (c *console) subscriberData(r *http.Request, sess *session, impi string) (map[string]any, error) {
	s, err := provision.GetSubscriber(r.Context(), c.s.cfg.DB, impi)
	if err != nil {
		return nil, err
	}
	reg, err := provision.GetRegistration(r.Context(), c.s.cfg.DB, impi)
	if err != nil {
		return nil, err
	}
	return map[string]any{"S": sess, "Sub": s, "Reg": reg, "ETag": c.s.etag(s, s.Secrets()), "Kind": s.OPType,
		"Done": r.URL.Query().Get("done")}, nil
}

func (c *console) subscriber(w http.ResponseWriter, r *http.Request, sess *session) error {
	data, err := c.subscriberData(r, sess, r.PathValue("impi"))
	if err != nil {
		return err
	}
	c.render(w, 200, "subscriber", data)
	return nil
}

func (c *console) updateSubscriber(w http.ResponseWriter, r *http.Request, sess *session) error {
	impi := r.PathValue("impi")
	s, err := subscriberFromForm(r)
	if err == nil {
		r.Header.Set("If-Match", r.PostForm.Get("etag"))
		_, err = provision.ReplaceSubscriber(r.Context(), c.s.cfg.DB, impi, s, ifMatch(c.s, r, provision.SubscriberRecord.Secrets))
	}
	if err != nil {
		data, derr := c.subscriberData(r, sess, impi)
		if derr != nil {
			return derr
		}
		data["Sub"] = s
		return c.formError(w, err, "subscriber", data)
	}
	http.Redirect(w, r, "/console/subscribers/"+url.PathEscape(impi)+"?done=saved", http.StatusSeeOther)
	return nil
}

func (c *console) deleteSubscriber(w http.ResponseWriter, r *http.Request, sess *session) error {
	if _, err := provision.RemoveSubscriber(r.Context(), c.s.cfg.DB, r.PathValue("impi"), nil); err != nil {
		return err
	}
	http.Redirect(w, r, "/console/subscribers", http.StatusSeeOther)
	return nil
}

func (c *console) operation(deregister bool) func(w http.ResponseWriter, r *http.Request, sess *session) error {
	return func(w http.ResponseWriter, r *http.Request, sess *session) error {
		op := c.s.cfg.Ops
		if op == nil {
			return problem(503, "", "this HSS runs the console without its Diameter node")
		}
		fn := op.PushProfile
		if deregister {
			fn = func(ctx context.Context, impu string) Outcome { return op.Deregister(ctx, impu, "operator (console)") }
		}
		_, body, err := c.s.operate(r, "", deregister, fn)
		if err != nil {
			return err
		}
		var parts []string
		for _, o := range body.(Outcomes).Results {
			parts = append(parts, o.IMPU+": "+o.Result)
		}
		http.Redirect(w, r, "/console/subscribers/"+url.PathEscape(r.PathValue("impi"))+"?done="+url.QueryEscape(strings.Join(parts, "; ")), http.StatusSeeOther)
		return nil
	}
}

func (c *console) deleteObject(list string, del func(context.Context, provision.DB, string) error) func(w http.ResponseWriter, r *http.Request, sess *session) error {
	return func(w http.ResponseWriter, r *http.Request, sess *session) error {
		if err := del(r.Context(), c.s.cfg.DB, r.PathValue("name")); err != nil {
			return err
		}
		http.Redirect(w, r, "/console/"+list, http.StatusSeeOther)
		return nil
	}
}

// listPage is a console page listing one kind of object with a form
// to add or replace one.
type listPage struct {
	tmpl string
	data func(r *http.Request, sess *session) (map[string]any, error)
}

func (c *console) show(p listPage) func(w http.ResponseWriter, r *http.Request, sess *session) error {
	return func(w http.ResponseWriter, r *http.Request, sess *session) error {
		data, err := p.data(r, sess)
		if err != nil {
			return err
		}
		c.render(w, 200, p.tmpl, data)
		return nil
	}
}

// save handles a list page's form: parse, then create, or replace when
// its "existing" box is ticked; an operator's error shows the page again
// with the message.
func save[T any](c *console, p listPage, parse func(*http.Request) (T, string, error),
	create func(context.Context, provision.DB, T) (T, error),
	replace func(context.Context, provision.DB, string, T, provision.Check[T]) (T, error)) func(w http.ResponseWriter, r *http.Request, sess *session) error {
	return func(w http.ResponseWriter, r *http.Request, sess *session) error {
		v, key, err := parse(r)
		if err == nil {
			if r.PostForm.Get("existing") != "" {
				_, err = replace(r.Context(), c.s.cfg.DB, key, v, nil)
			} else {
				_, err = create(r.Context(), c.s.cfg.DB, v)
			}
		}
		if err != nil {
			data, derr := p.data(r, sess)
			if derr != nil {
				return derr
			}
			return c.formError(w, err, p.tmpl, data)
		}
		http.Redirect(w, r, "/console/"+p.tmpl, http.StatusSeeOther)
		return nil
	}
}

var all = provision.ListOptions{Limit: provision.MaxLimit}

func (c *console) profilesPage() listPage {
	return listPage{tmpl: "profiles", data: func(r *http.Request, sess *session) (map[string]any, error) {
		ps, _, err := provision.ListProfiles(r.Context(), c.s.cfg.DB, all)
		return map[string]any{"S": sess, "Profiles": ps}, err
	}}
}

func (c *console) ifcsPage() listPage {
	return listPage{tmpl: "ifcs", data: func(r *http.Request, sess *session) (map[string]any, error) {
		fs, _, err := provision.ListIFCs(r.Context(), c.s.cfg.DB, all)
		if err != nil {
			return nil, err
		}
		as, _, err := provision.ListAS(r.Context(), c.s.cfg.DB, all)
		return map[string]any{"S": sess, "IFCs": fs, "ASs": as}, err
	}}
}

func (c *console) asPage() listPage {
	return listPage{tmpl: "application-servers", data: func(r *http.Request, sess *session) (map[string]any, error) {
		as, _, err := provision.ListAS(r.Context(), c.s.cfg.DB, all)
		return map[string]any{"S": sess, "ASs": as}, err
	}}
}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' })
}

func formInt(f url.Values, name, field string) (*int32, error) {
	v := strings.TrimSpace(f.Get(name))
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return nil, &provision.UserError{Field: field, Msg: fmt.Sprintf("%s %q is not a number", name, v)}
	}
	x := int32(n)
	return &x, nil
}

// profileFromForm reads the profile form: iFCs as NAME[:PRIORITY], shared
// iFC set ids, the media profile id.
func profileFromForm(r *http.Request) (provision.Profile, string, error) {
	f := r.PostForm
	p := provision.Profile{Name: strings.TrimSpace(f.Get("name"))}
	for _, x := range splitList(f.Get("ifcs")) {
		name, prio, ok := strings.Cut(x, ":")
		pi := provision.ProfileIFC{Name: name}
		if ok {
			v, err := formInt(url.Values{"priority": {prio}}, "priority", "/ifcs")
			if err != nil {
				return p, p.Name, err
			}
			pi.Priority = v
		}
		p.IFCs = append(p.IFCs, pi)
	}
	for _, x := range splitList(f.Get("shared_ifc_sets")) {
		v, err := formInt(url.Values{"set": {x}}, "set", "/shared_ifc_sets")
		if err != nil {
			return p, p.Name, err
		}
		p.SharedIFCSets = append(p.SharedIFCSets, *v)
	}
	var err error
	p.SubscribedMediaProfileID, err = formInt(f, "media_profile", "/subscribed_media_profile_id")
	return p, p.Name, err
}

// ifcFromForm reads the iFC form; trigger lines are imsctl's flags
// without dashes: "method INVITE", "session-case 0:orig", "header
// Accept-Contact=.*mmtel.*", "registration-type initial".
func ifcFromForm(r *http.Request) (provision.IFC, string, error) {
	f := r.PostForm
	x := provision.IFC{Name: strings.TrimSpace(f.Get("name")), ProfilePart: f.Get("profile_part"),
		ApplicationServer: f.Get("application_server"), ConditionType: f.Get("condition_type")}
	if v := strings.TrimSpace(f.Get("priority")); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return x, x.Name, &provision.UserError{Field: "/priority", Msg: "priority is not a number"}
		}
		x.Priority = int32(n)
	}
	in := provision.TriggerInput{DNF: x.ConditionType == "dnf"}
	for i, line := range strings.Split(f.Get("triggers"), "\n") {
		kind, v, _ := strings.Cut(strings.TrimSpace(line), " ")
		v = strings.TrimSpace(v)
		switch kind {
		case "":
			continue
		case "method":
			in.Methods = append(in.Methods, v)
		case "ruri":
			in.RequestURIs = append(in.RequestURIs, v)
		case "header":
			in.Headers = append(in.Headers, v)
		case "session-case":
			in.SessionCases = append(in.SessionCases, v)
		case "sdp":
			in.SDPs = append(in.SDPs, v)
		case "registration-type":
			in.RegistrationTypes = append(in.RegistrationTypes, v)
		default:
			return x, x.Name, &provision.UserError{Field: "/spts", Msg: fmt.Sprintf("trigger line %d: %q is not method, ruri, header, session-case, sdp or registration-type", i+1, kind)}
		}
	}
	spts, err := in.Parse()
	x.SPTs = spts
	return x, x.Name, err
}

// asFromForm reads the application server form; Sh permissions are lines
// DATAREF=udr,pur,snr.
func asFromForm(r *http.Request) (provision.AppServer, string, error) {
	f := r.PostForm
	a := provision.AppServer{Name: strings.TrimSpace(f.Get("name")), ServerName: strings.TrimSpace(f.Get("server_name")),
		DefaultHandling: f.Get("default_handling"), ServiceInfo: f.Get("service_info"),
		IncludeRegisterRequest: f.Get("include_register_request") != "", IncludeRegisterResponse: f.Get("include_register_response") != "",
		DiameterHost: strings.TrimSpace(f.Get("diameter_host"))}
	for _, line := range strings.Split(f.Get("sh"), "\n") {
		ref, ops, _ := strings.Cut(strings.TrimSpace(line), "=")
		if ref == "" {
			continue
		}
		if a.Sh == nil {
			a.Sh = map[string][]string{}
		}
		a.Sh[ref] = append([]string{}, splitList(ops)...)
	}
	return a, a.Name, nil
}
