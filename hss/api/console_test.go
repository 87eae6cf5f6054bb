package api_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// consoleClient signs in to the console with token and keeps its cookie.
type consoleClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func signIn(t *testing.T, e *env, token string) *consoleClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	cc := &consoleClient{t: t, base: e.srv.URL, c: &http.Client{Jar: jar}}
	status, body := cc.post("/console/login", url.Values{"token": {token}})
	if status != 200 || !strings.Contains(body, `id="subscribers"`) {
		t.Fatalf("sign in: %d\n%s", status, body)
	}
	return cc
}

func (cc *consoleClient) get(path string) (int, string) {
	cc.t.Helper()
	res, err := cc.c.Get(cc.base + path)
	if err != nil {
		cc.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (cc *consoleClient) post(path string, form url.Values) (int, string) {
	cc.t.Helper()
	res, err := cc.c.PostForm(cc.base+path, form)
	if err != nil {
		cc.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// form posts a form of the page at path with its CSRF token.
func (cc *consoleClient) form(page, path string, form url.Values) (int, string) {
	cc.t.Helper()
	_, body := cc.get(page)
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		cc.t.Fatalf("%s has no form token:\n%s", page, body)
	}
	form.Set("csrf", m[1])
	return cc.post(path, form)
}

// TestConsolePages drives the console's forms over HTTP (the browser test
// in e2e covers the subscriber pages with Chromium): application servers,
// iFCs, profiles, the CSRF check and the read-only role.
func TestConsolePages(t *testing.T) {
	e := newEnv(t)
	if status, body := (&consoleClient{t: t, base: e.srv.URL, c: &http.Client{}}).get("/console/subscribers"); status != 200 || !strings.Contains(body, `id="token"`) {
		t.Fatalf("without a session: %d, want the sign-in page\n%s", status, body)
	}
	admin := signIn(t, e, adminToken)
	status, body := admin.form("/console/application-servers", "/console/application-servers", url.Values{"name": {"mmtel"},
		"server_name": {"sip:mmtel.ims:5090"}, "default_handling": {"terminate"}, "diameter_host": {"mmtel.ims"}, "sh": {"RepositoryData=udr,pur\n"}})
	if status != 200 || !strings.Contains(body, "sip:mmtel.ims:5090") || !strings.Contains(body, "RepositoryData=udr,pur") {
		t.Fatalf("add AS: %d\n%s", status, body)
	}
	status, body = admin.form("/console/ifcs", "/console/ifcs", url.Values{"name": {"orig"}, "priority": {"3"}, "application_server": {"mmtel"},
		"condition_type": {"cnf"}, "triggers": {"method INVITE\nmethod MESSAGE\nsession-case orig\n"}})
	if status != 200 || !strings.Contains(body, "(method=INVITE OR method=MESSAGE) AND (session-case=originating)") {
		t.Fatalf("add iFC: %d\n%s", status, body)
	}
	status, body = admin.form("/console/ifcs", "/console/ifcs", url.Values{"name": {"bad"}, "application_server": {"mmtel"},
		"triggers": {"session-case sideways\n"}})
	if status != 422 || !strings.Contains(body, `id="error"`) || !strings.Contains(body, "sideways") {
		t.Fatalf("bad iFC: %d\n%s", status, body)
	}
	status, body = admin.form("/console/profiles", "/console/profiles", url.Values{"name": {"gold"}, "ifcs": {"orig:1"}, "shared_ifc_sets": {"4"}})
	if status != 200 || !strings.Contains(body, "orig:1") {
		t.Fatalf("add profile: %d\n%s", status, body)
	}
	status, body = admin.form("/console/subscribers/new", "/console/subscribers/new", url.Values{"impi": {"dora@ims"},
		"impus": {"sip:dora@ims profile=gold\ntel:+15550123 barred profile=gold\n"}, "password": {"pw"}})
	if status != 200 || !strings.Contains(body, `data-impu="tel:&#43;15550123">not_registered`) || !strings.Contains(body, "added") {
		t.Fatalf("add subscriber: %d\n%s", status, body)
	}
	// A stale ETag (someone changed the subscriber since the page was read): 412.
	_, page := admin.get("/console/subscribers/dora@ims")
	etag := regexp.MustCompile(`name="etag" value="([^"]*)"`).FindStringSubmatch(page)[1]
	csrf := csrfRE.FindStringSubmatch(page)[1]
	want(t, e.do("PUT", "/api/v1/subscribers/dora@ims", adminToken, map[string]any{"impi": "dora@ims", "imsu": "dora-family",
		"impus": []map[string]any{{"identity": "sip:dora@ims", "profile": "gold"}}}), 200)
	status, body = admin.post("/console/subscribers/dora@ims", url.Values{"csrf": {csrf}, "etag": {strings.ReplaceAll(etag, "&#34;", `"`)},
		"impi": {"dora@ims"}, "impus": {"sip:dora@ims\n"}})
	if status != 412 || !strings.Contains(body, "changed since it was read") {
		t.Fatalf("stale edit: %d\n%s", status, body)
	}
	// A form without the session's token is refused.
	if status, _ := admin.post("/console/profiles/gold/delete", url.Values{"csrf": {"forged"}}); status != 403 {
		t.Fatalf("forged form: %d", status)
	}
	reader := signIn(t, e, readToken)
	if status, body := reader.form("/console/profiles", "/console/profiles/gold/delete", url.Values{}); status != 403 || !strings.Contains(body, "read-only") {
		t.Fatalf("read-only delete: %d\n%s", status, body)
	}
	if status, body := reader.get("/console/subscribers?q=dora"); status != 200 || !strings.Contains(body, "dora@ims") {
		t.Fatalf("read-only list: %d\n%s", status, body)
	}
	status, body = admin.form("/console/subscribers/dora@ims", "/console/subscribers/dora@ims/delete", url.Values{})
	if status != 200 || strings.Contains(body, "dora@ims") {
		t.Fatalf("delete subscriber: %d\n%s", status, body)
	}
	for _, p := range []string{"profiles/gold", "ifcs/orig", "application-servers/mmtel"} {
		list := "/console/" + strings.Split(p, "/")[0]
		if status, body := admin.form(list, "/console/"+p+"/delete", url.Values{}); status != 200 || strings.Contains(body, "<td>"+strings.Split(p, "/")[1]+"</td>") {
			t.Fatalf("delete %s: %d\n%s", p, status, body)
		}
	}
}
