package provision_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imscore/imscore/hss/provision"
	"github.com/imscore/imscore/migrations"
	"github.com/imscore/imscore/pkg/pgtest"
	"github.com/jackc/pgx/v5"
)

const (
	k   = "465b5ce8b199b49faa5f0a2ee238a6bc"
	op  = "cdc202d5123e20f62b6d676ac72cb318"
	sqn = "281044218590727" // 0xff9bb4d0b607
)

func imsctl(dsn string, args ...string) (string, error) {
	var out bytes.Buffer
	err := provision.Run(append([]string{"imsctl", "--database-url", dsn}, args...), &out)
	return out.String(), err
}

// counts returns the row count of every table of the schema.
func counts(t *testing.T, conn *pgx.Conn) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, n := range names {
		var c int64
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{n}.Sanitize()).Scan(&c); err != nil {
			t.Fatal(err)
		}
		out[n] = c
	}
	return out
}

func sameCounts(t *testing.T, what string, a, b map[string]int64) {
	t.Helper()
	for k, v := range a {
		if b[k] != v {
			t.Errorf("%s changed table %s: %d → %d rows", what, k, v, b[k])
		}
	}
}

func TestAddAndShowTS35208(t *testing.T) {
	dsn, _ := pgtest.Migrated(t)
	out, err := imsctl(dsn, "subscriber", "add", "--impi", "alice@ims.example", "--impu", "sip:alice@ims.example",
		"--impu", "tel:+1-555-1234", "--k", k, "--op", op, "--amf", "8000", "--sqn", sqn)
	if err != nil || !strings.Contains(out, "added IMPI alice@ims.example with 2 IMPU(s)") {
		t.Fatalf("%v\n%s", err, out)
	}
	// Stored as tel:+15551234 (visual separators removed, RFC 3966 §5.1.1)
	// and found under its SIP form with user=phone as well.
	out, err = imsctl(dsn, "subscriber", "show", "sip:+15551234@ims.example;user=phone")
	if err != nil || !strings.Contains(out, "IMPU tel:+15551234") {
		t.Fatalf("show by sip:...;user=phone: %v\n%s", err, out)
	}
	out, err = imsctl(dsn, "subscriber", "show", "tel:+15551234")
	if err != nil || !strings.Contains(out, "SQN 281044218590727 (0xff9bb4d0b607)") || !strings.Contains(out, "AMF 8000") ||
		!strings.Contains(out, "IMPU sip:alice@ims.example") || strings.Contains(out, k) {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err = imsctl(dsn, "subscriber", "show", "alice@ims.example", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var infos []provision.SubscriberInfo
	if err := json.Unmarshal([]byte(out), &infos); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	in, reg := infos[0].Subscriber, infos[0].Registration
	if in.OPType != "op" || !in.HasK || reg.SQN != 0xff9bb4d0b607 || len(in.IMPUs) != 2 || in.IMPUs[0].ImplicitSet != in.IMPUs[1].ImplicitSet ||
		in.AuthSchemes[0] != "aka" || in.IMPUs[0].Profile != "default" || in.K != "" || in.OP != "" || strings.Contains(out, k) {
		t.Fatalf("%+v\n%s", in, out)
	}
	// An MD5 softphone user with a password.
	if out, err := imsctl(dsn, "subscriber", "add", "--impi", "bob@ims.example", "--impu", "sip:bob@ims.example", "--password", "secret"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	out, err = imsctl(dsn, "subscriber", "list", "--json")
	if err != nil || !strings.Contains(out, `"md5"`) || !strings.Contains(out, `"digest_realm": "ims.example"`) {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err = imsctl(dsn, "subscriber", "delete", "alice@ims.example")
	if err != nil || !strings.Contains(out, "2 IMPU(s)") {
		t.Fatalf("%v %s", err, out)
	}
	if _, err := imsctl(dsn, "subscriber", "show", "alice@ims.example"); err == nil {
		t.Fatal("deleted subscriber still shown")
	}
}

func TestErrorsWriteNothing(t *testing.T) {
	dsn, conn := pgtest.Migrated(t)
	if _, err := imsctl(dsn, "subscriber", "add", "--impi", "dup@ims", "--impu", "sip:dup@ims", "--password", "x"); err != nil {
		t.Fatal(err)
	}
	base := []string{"subscriber", "add", "--impi", "new@ims", "--impu", "sip:new@ims"}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--k", "zz5b5ce8b199b49faa5f0a2ee238a6bc", "--op", op}, "--k is not hexadecimal"},
		{[]string{"--k", k[:30], "--op", op}, "--k must be 16 bytes (32 hex digits), got 15"},
		{[]string{"--k", k, "--op", op, "--opc", op}, "either op or opc, not both"},
		{[]string{"--k", k, "--op", op, "--amf", "80"}, "--amf must be 2 bytes"},
		{[]string{"--k", k}, "k needs op or opc"},
		{[]string{"--password", "x", "--profile", "gold"}, "service profile gold does not exist"},
		{[]string{"--password", "x", "--impu", "mailto:x@y"}, "must be a sip:, sips: or tel: URI"},
		{[]string{"--password", "x", "--impu", "sip:dup@ims"}, "IMPU sip:dup@ims already exists"},
		{[]string{"--password", "x", "--auth-schemes", "aka"}, "auth scheme aka needs k"},
		{[]string{"--password", "x", "--barred", "sip:new@ims"}, "every IMPU is barred"},
		{[]string{}, "give k with op or opc (AKA) or a password"},
	}
	for _, c := range cases {
		before := counts(t, conn)
		_, err := imsctl(dsn, append(append([]string{}, base...), c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %q", c.args, err, c.want)
		}
		sameCounts(t, strings.Join(c.args, " "), before, counts(t, conn))
	}
	before := counts(t, conn)
	_, err := imsctl(dsn, "subscriber", "add", "--impi", "dup@ims", "--impu", "sip:other@ims", "--password", "x")
	if err == nil || err.Error() != "IMPI dup@ims already exists" {
		t.Errorf("duplicate IMPI: %v", err)
	}
	sameCounts(t, "duplicate IMPI", before, counts(t, conn))
	_, err = imsctl(dsn, "ifc", "add", "f", "--as", "nope", "--method", "INVITE")
	if err == nil || !strings.Contains(err.Error(), "application server nope does not exist") {
		t.Errorf("ifc with unknown AS: %v", err)
	}
	sameCounts(t, "ifc add", before, counts(t, conn))
}

func TestImportCSV(t *testing.T) {
	dsn, conn := pgtest.Migrated(t)
	dir := t.TempDir()
	good := "impi,impu,k,op,amf,sqn,password\n" +
		"u1@ims,sip:u1@ims tel:+1001," + k + "," + op + ",8000,0,\n" +
		"u2@ims,sip:u2@ims,,,,,pw2\n"
	bad := "impi,impu,k,op,password\n" +
		"u3@ims,sip:u3@ims,,,pw\n" +
		"u4@ims,sip:u4@ims," + k[:31] + "," + op + ",\n"
	os.WriteFile(filepath.Join(dir, "good.csv"), []byte(good), 0o600)
	os.WriteFile(filepath.Join(dir, "bad.csv"), []byte(bad), 0o600)
	before := counts(t, conn)
	_, err := imsctl(dsn, "subscriber", "import", filepath.Join(dir, "bad.csv"))
	if err == nil || !strings.Contains(err.Error(), "line 3:") || !strings.Contains(err.Error(), "nothing was imported") {
		t.Fatalf("bad CSV: %v", err)
	}
	sameCounts(t, "bad CSV", before, counts(t, conn))
	out, err := imsctl(dsn, "subscriber", "import", filepath.Join(dir, "good.csv"))
	if err != nil || !strings.Contains(out, "imported 2 subscriber(s)") {
		t.Fatalf("%v %s", err, out)
	}
	if c := counts(t, conn); c["impi"] != 2 || c["impu"] != 3 || c["implicit_registration_set"] != 2 {
		t.Fatalf("after import %v", c)
	}
	// Conflicts found by the set-based statements still name their line:
	// an IMPI already stored, an IMPU given twice in the file.
	for name, c := range map[string]struct{ csv, want string }{
		"existing.csv": {"impi,impu,password\nu5@ims,sip:u5@ims,pw\nu1@ims,sip:u1b@ims,pw\n", "line 3: IMPI u1@ims already exists"},
		"twice.csv":    {"impi,impu,password\nu6@ims,sip:u6@ims,pw\nu7@ims,sip:u7@ims sip:u6@ims,pw\n", "line 3: IMPU sip:u6@ims given twice (first on line 2)"},
		"profile.csv":  {"impi,impu,password,profile\nu8@ims,sip:u8@ims,pw,gold\n", "line 2: service profile gold does not exist"},
	} {
		os.WriteFile(filepath.Join(dir, name), []byte(c.csv), 0o600)
		before := counts(t, conn)
		if _, err := imsctl(dsn, "subscriber", "import", filepath.Join(dir, name)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
		sameCounts(t, name, before, counts(t, conn))
	}
	// Two rows sharing an IMSU, one joining an IMSU already stored.
	shared := "impi,impu,imsu,password,scscf\nv1@ims,sip:v1@ims,family,pw,sip:scscf.ims:5080\nv2@ims,sip:v2@ims,family,pw,\nv3@ims,sip:v3@ims,u1@ims,pw,\n"
	os.WriteFile(filepath.Join(dir, "shared.csv"), []byte(shared), 0o600)
	if _, err := conn.Exec(context.Background(), "LISTEN hss_userdata"); err != nil {
		t.Fatal(err)
	}
	if out, err := imsctl(dsn, "subscriber", "import", filepath.Join(dir, "shared.csv")); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	// The running HSS hears of the import (its user data cache empties),
	// also when the import skipped the per-row triggers.
	wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	n, err := conn.WaitForNotification(wctx)
	cancel()
	if err != nil || n.Channel != "hss_userdata" {
		t.Fatalf("no hss_userdata notification after the import: %v", err)
	}
	if _, err := conn.Exec(context.Background(), "UNLISTEN hss_userdata"); err != nil {
		t.Fatal(err)
	}
	var families, u1 int64
	var pref string
	if err := conn.QueryRow(context.Background(), `SELECT count(DISTINCT imsu_id) FILTER (WHERE identity IN ('v1@ims', 'v2@ims')),
		count(*) FILTER (WHERE imsu_id = (SELECT imsu_id FROM impi WHERE identity = 'u1@ims')),
		(SELECT preferred_scscf FROM imsu WHERE name = 'family') FROM impi`).Scan(&families, &u1, &pref); err != nil {
		t.Fatal(err)
	}
	if families != 1 || u1 != 2 || pref != "sip:scscf.ims:5080" {
		t.Errorf("IMSUs: family %d, u1's %d, preferred %q", families, u1, pref)
	}
	// Export writes the import format back; secrets only when asked.
	out, err = imsctl(dsn, "subscriber", "export")
	if err != nil || !strings.HasPrefix(out, "impi,impu,imsu,amf,sqn,realm,auth_schemes,profile,scscf,barred\n") ||
		!strings.Contains(out, "u1@ims,sip:u1@ims tel:+1001,u1@ims,8000,0,,aka,default,,\n") || strings.Contains(out, k) {
		t.Fatalf("export: %v\n%s", err, out)
	}
	file := filepath.Join(dir, "export.csv")
	if out, err := imsctl(dsn, "subscriber", "export", "--secrets", file); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	// Re-imported into an empty database, it gives the same subscribers.
	dsn2, conn2 := pgtest.Migrated(t)
	if out, err := imsctl(dsn2, "subscriber", "import", file); err != nil || !strings.Contains(out, "imported 5 subscriber(s)") {
		t.Fatalf("re-import: %v %s", err, out)
	}
	a, _ := imsctl(dsn, "subscriber", "list", "--json")
	b, _ := imsctl(dsn2, "subscriber", "list", "--json")
	norm := regexp.MustCompile(`"implicit_set": [0-9]+`)
	if norm.ReplaceAllString(a, "") != norm.ReplaceAllString(b, "") {
		t.Errorf("export → import changed the subscribers:\n%s\n%s", a, b)
	}
	var k2 []byte
	if err := conn2.QueryRow(context.Background(), `SELECT k FROM impi WHERE identity = 'u1@ims'`).Scan(&k2); err != nil || fmt.Sprintf("%x", k2) != k {
		t.Errorf("K after re-import: %x %v", k2, err)
	}
}

func TestDeregisterNotifies(t *testing.T) {
	dsn, conn := pgtest.Migrated(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := imsctl(dsn, "subscriber", "add", "--impi", "d@ims", "--impu", "sip:d@ims", "--password", "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "LISTEN hss_commands"); err != nil {
		t.Fatal(err)
	}
	out, err := imsctl(dsn, "deregister", "sip:d@ims", "--reason", "operator")
	if err != nil || !strings.Contains(out, "queued RTR") {
		t.Fatalf("%v %s", err, out)
	}
	n, err := conn.WaitForNotification(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var kind, impu, reason string
	if err := conn.QueryRow(ctx, `SELECT kind, impu, reason FROM hss_command WHERE id = $1::bigint AND done_at IS NULL`, n.Payload).Scan(&kind, &impu, &reason); err != nil {
		t.Fatal(err)
	}
	if kind != "rtr" || impu != "sip:d@ims" || reason != "operator" {
		t.Fatal(kind, impu, reason)
	}
	if _, err := imsctl(dsn, "deregister", "sip:nobody@ims"); err == nil {
		t.Fatal("deregister of an unknown IMPU succeeded")
	}
}

func TestTriggerSyntax(t *testing.T) {
	spts, err := provision.TriggerInput{Methods: []string{"0:INVITE", "1:!MESSAGE"}, SessionCases: []string{"0:term-unreg"}, DNF: true}.Parse()
	if err != nil || len(spts) != 3 || spts[1].Group != 1 || !spts[1].Negated || spts[2].Value != "terminating-unregistered" || spts[2].Group != 0 {
		t.Fatalf("%+v %v", spts, err)
	}
	for _, in := range []provision.TriggerInput{
		{Methods: []string{"0:INVITE", "MESSAGE"}},
		{RequestURIs: []string{"sip:(x"}},
		{SessionCases: []string{"sideways"}},
		{RegistrationTypes: []string{"initial"}, Methods: []string{"INVITE"}},
		{Headers: []string{"=x"}},
	} {
		if _, err := in.Parse(); err == nil {
			t.Errorf("%+v accepted", in)
		}
	}
}

// Build the imsctl binary and run it against a fresh database.
func TestImsctlBinary(t *testing.T) {
	dsn := pgtest.NewDB(t)
	bin := filepath.Join(t.TempDir(), "imsctl")
	build := exec.Command("go", "build", "-o", bin, "github.com/imscore/imscore/cmd/imsctl")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	runBin := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "DATABASE_URL="+dsn)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	latest, err := fs.Glob(migrations.FS(), "*.sql")
	if err != nil || len(latest) == 0 {
		t.Fatalf("migrations: %v %v", latest, err)
	}
	for i, want := range []string{fmt.Sprintf("migrated schema from version 0 to %d", len(latest)),
		fmt.Sprintf("schema is up to date (version %d)", len(latest))} {
		if out, err := runBin("db", "migrate"); err != nil || !strings.Contains(out, want) {
			t.Fatalf("migrate %d: %v %s", i, err, out)
		}
	}
	if out, err := runBin("as", "add", "mmtel", "--server-name", "sip:mmtel.ims:5090"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if out, err := runBin("ifc", "add", "mmtel-orig", "--as", "mmtel", "--method", "INVITE", "--session-case", "orig", "--profile", "default"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if out, err := runBin("subscriber", "add", "--impi", "alice@ims", "--impu", "sip:alice@ims", "--k", k, "--op", op); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	out, err := runBin("ifc", "show", "mmtel-orig")
	if err != nil || !strings.Contains(out, "(method=INVITE) AND (session-case=originating)") {
		t.Fatalf("%v %s", err, out)
	}
	out, err = runBin("subscriber", "add", "--impi", "alice@ims", "--impu", "sip:alice2@ims", "--password", "x")
	if err == nil || !strings.Contains(out, "imsctl: IMPI alice@ims already exists") {
		t.Fatalf("duplicate: %v %s", err, out)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit status %v", err)
	}
}

func TestPushProfileQueuesPPR(t *testing.T) {
	dsn, conn := pgtest.Migrated(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for u, tel := range map[string]string{"e": "tel:+15550001", "f": "tel:+15550002"} {
		if _, err := imsctl(dsn, "subscriber", "add", "--impi", u+"@ims", "--impu", "sip:"+u+"@ims", "--impu", tel, "--password", "x"); err != nil {
			t.Fatal(err)
		}
	}
	// Only e is assigned to an S-CSCF (as after its SAR).
	if _, err := conn.Exec(ctx, `INSERT INTO scscf_assignment (impu_id, scscf_name) SELECT id, 'sip:scscf.ims:5080' FROM impu WHERE identity IN ('sip:e@ims')`); err != nil {
		t.Fatal(err)
	}
	out, err := imsctl(dsn, "push-profile", "--profile", "default")
	if err != nil || !strings.Contains(out, "queued 1 PPR") {
		t.Fatalf("push-profile --profile: %v %s", err, out)
	}
	out, err = imsctl(dsn, "push-profile", "sip:f@ims")
	if err != nil || !strings.Contains(out, "queued 1 PPR") {
		t.Fatalf("push-profile IMPU: %v %s", err, out)
	}
	rows, err := conn.Query(ctx, `SELECT impu FROM hss_command WHERE kind = 'ppr' AND done_at IS NULL ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	impus, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(impus) != 2 || impus[0] != "sip:e@ims" || impus[1] != "sip:f@ims" {
		t.Fatalf("queued PPRs for %v", impus)
	}
	for _, bad := range [][]string{{"push-profile", "sip:nobody@ims"}, {"push-profile", "--profile", "nosuch"}, {"push-profile"}} {
		if out, err := imsctl(dsn, bad...); err == nil {
			t.Errorf("imsctl %v succeeded: %s", bad, out)
		}
	}
}

// TestImportWithoutSuperuser imports as a role that may not skip the
// per-row triggers (not a superuser): the same rows arrive, with the
// foreign key checks and impi_check run by PostgreSQL.
func TestImportWithoutSuperuser(t *testing.T) {
	dsn, conn := pgtest.Migrated(t)
	ctx := context.Background()
	role := fmt.Sprintf("pgtest_importer_%d", time.Now().UnixNano())
	db := conn.Config().Database
	for _, q := range []string{
		`CREATE ROLE ` + role + ` LOGIN NOSUPERUSER`,
		`GRANT CONNECT, TEMPORARY ON DATABASE ` + pgx.Identifier{db}.Sanitize() + ` TO ` + role,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ` + role,
		`GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO ` + role,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), `DROP OWNED BY `+role)
		_, _ = conn.Exec(context.Background(), `DROP ROLE `+role)
	})
	u, _ := url.Parse(dsn)
	u.User = url.User(role)
	dir := t.TempDir()
	csv := "impi,impu,imsu,k,op,password\nw1@ims,sip:w1@ims tel:+3001,fam,," + ",pw\nw2@ims,sip:w2@ims,fam," + k + "," + op + ",\n"
	os.WriteFile(filepath.Join(dir, "w.csv"), []byte(csv), 0o600)
	if out, err := imsctl(u.String(), "subscriber", "import", filepath.Join(dir, "w.csv")); err != nil || !strings.Contains(out, "imported 2") {
		t.Fatalf("import as %s: %v %s", role, err, out)
	}
	if c := counts(t, conn); c["impi"] != 2 || c["impu"] != 3 || c["imsu"] != 1 || c["impi_impu"] != 3 {
		t.Fatalf("after import %v", c)
	}
	// A conflict still names its line through the triggers' path.
	os.WriteFile(filepath.Join(dir, "dup.csv"), []byte("impi,impu,password\nw3@ims,sip:w3@ims,pw\nw4@ims,tel:+3001,pw\n"), 0o600)
	if _, err := imsctl(u.String(), "subscriber", "import", filepath.Join(dir, "dup.csv")); err == nil || !strings.Contains(err.Error(), "line 3: IMPU tel:+3001 already exists") {
		t.Fatalf("conflict as %s: %v", role, err)
	}
}
