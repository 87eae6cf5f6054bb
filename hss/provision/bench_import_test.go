package provision_test

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/pgtest"
)

// TestBenchImport is make bench-import: BENCH_IMPORT_N AKA subscribers
// (CSV columns impi, impu, k, op, amf, as a new user would write them)
// imported by the imsctl binary into a throw-away database, timed from
// the command's start to its exit. Skipped unless BENCH_IMPORT_N is set.
func TestBenchImport(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("BENCH_IMPORT_N"))
	if n <= 0 {
		t.Skip("benchmark: set BENCH_IMPORT_N (make bench-import)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "imsctl")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/imscore/imscore/cmd/imsctl").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dsn, conn := pgtest.Migrated(t)
	file := filepath.Join(dir, "subscribers.csv")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, "impi,impu,k,op,amf")
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("00101%010d", i)
		fmt.Fprintf(w, "%s@ims.mnc001.mcc001.3gppnetwork.org,sip:%s@ims.mnc001.mcc001.3gppnetwork.org,%032x,%s,8000\n", id, id, i+1, op)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	st, _ := os.Stat(file)
	cmd := exec.Command(bin, "subscriber", "import", file)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dsn)
	// The PostgreSQL back end's CPU time, sampled while it lives (it ends
	// with imsctl): what the import costs whatever else the machine runs.
	u, _ := url.Parse(dsn)
	db := strings.TrimPrefix(u.Path, "/")
	var pgCPU float64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		_, base := pgtest.CPUSeconds(db)
		for {
			if _, c := pgtest.CPUSeconds(db); c-base > pgCPU {
				pgCPU = c - base
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	start := time.Now()
	out, err := cmd.CombinedOutput()
	elapsed := time.Since(start)
	close(stop)
	<-sampled
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("imported %d subscriber(s)", n)) {
		t.Fatalf("import: %v\n%s", err, out)
	}
	var impi, impu, link int64
	if err := conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM impi), (SELECT count(*) FROM impu), (SELECT count(*) FROM impi_impu)`).Scan(&impi, &impu, &link); err != nil {
		t.Fatal(err)
	}
	if impi != int64(n) || impu != int64(n) || link != int64(n) {
		t.Fatalf("after import: %d IMPIs, %d IMPUs, %d links; want %d", impi, impu, link, n)
	}
	var load string
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	fmt.Printf("bench-import: %d AKA subscribers (%.0f MB of CSV) imported by imsctl in %.1f s (%.0f subscribers/s); CPU: imsctl %.1f s, its PostgreSQL back end %.1f s; load average %s\n",
		n, float64(st.Size())/1e6, elapsed.Seconds(), float64(n)/elapsed.Seconds(),
		cmd.ProcessState.UserTime().Seconds()+cmd.ProcessState.SystemTime().Seconds(), pgCPU, load)
}
