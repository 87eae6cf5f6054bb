//go:build !ipsecvm

package ipsecvm

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/pgtest"
)

// The modules the scenarios need, by name; their dependencies come from
// modules.dep. XFRM and ESP (with the crypto of TS 33.203: hmac(sha1),
// hmac(md5), cbc(aes), ecb(cipher_null), and the IV generators and
// random source ESP uses), veth, the virtio network (PostgreSQL of the
// host) and block device (the output disk).
var vmModules = []string{
	"xfrm_algo", "xfrm_user", "authenc", "echainiv", "seqiv", "esp4", "ecb", "cbc", "md5", "sha1_generic",
	"hmac", "aes_generic", "crypto_null", "jitterentropy_rng", "drbg", "sha512_generic",
	"veth", "virtio_net", "virtio_blk", "virtio_pci",
}

// vmTools are the host's pieces of the VM.
type vmTools struct {
	qemu, kernel, kver, modDir, busybox, ip string
}

// findTools locates qemu, a kernel with ESP modules, busybox-static and
// iproute2's ip. Where one is missing it skips the test naming the Debian
// package, or fails it when IPSECVM_REQUIRE=1 (set by make test-ipsec and
// by CI, which installs them all), so that a machine without them never
// reports the scenarios as passed.
func findTools(t *testing.T) vmTools {
	t.Helper()
	var v vmTools
	var err error
	if v.qemu, err = exec.LookPath("qemu-system-x86_64"); err != nil {
		missingTool(t, "ipsecvm: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86): the IPsec scenarios need a kernel with ESP")
	}
	v.kernel, v.kver = findKernel()
	if v.kernel == "" {
		missingTool(t, "ipsecvm: no kernel image with ESP modules in /boot and /lib/modules (apt-get install linux-image-cloud-amd64), or set IPSECVM_KERNEL")
	}
	v.modDir = filepath.Join("/lib/modules", v.kver)
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if isStatic(p) {
			v.busybox = p
			break
		}
	}
	if v.busybox == "" {
		missingTool(t, "ipsecvm: no statically linked busybox (apt-get install busybox-static)")
	}
	for _, p := range []string{"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"} {
		if _, err := os.Stat(p); err == nil {
			v.ip = p
			break
		}
	}
	if v.ip == "" {
		missingTool(t, "ipsecvm: iproute2's ip is not installed (apt-get install iproute2)")
	}
	return v
}

// missingTool skips the test with msg, or fails it when IPSECVM_REQUIRE=1.
func missingTool(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("IPSECVM_REQUIRE") == "1" {
		t.Fatal(msg + " (IPSECVM_REQUIRE=1: a missing tool fails the scenarios instead of skipping them)")
	}
	t.Skip(msg)
}

// findKernel returns the newest /boot/vmlinuz-* whose modules include
// esp4, preferring the cloud flavour (IPSECVM_KERNEL overrides).
func findKernel() (path, ver string) {
	if k := os.Getenv("IPSECVM_KERNEL"); k != "" {
		return k, strings.TrimPrefix(filepath.Base(k), "vmlinuz-")
	}
	imgs, _ := filepath.Glob("/boot/vmlinuz-*")
	var ok []string
	for _, img := range imgs {
		ver := strings.TrimPrefix(filepath.Base(img), "vmlinuz-")
		if f, err := os.Open(img); err == nil {
			f.Close()
		} else {
			continue
		}
		if dep, err := os.ReadFile(filepath.Join("/lib/modules", ver, "modules.dep")); err == nil && bytes.Contains(dep, []byte("/esp4.ko")) {
			ok = append(ok, img)
		}
	}
	sort.Slice(ok, func(i, j int) bool {
		ci, cj := strings.Contains(ok[i], "cloud"), strings.Contains(ok[j], "cloud")
		if ci != cj {
			return ci
		}
		return ok[i] > ok[j]
	})
	if len(ok) == 0 {
		return "", ""
	}
	return ok[0], strings.TrimPrefix(filepath.Base(ok[0]), "vmlinuz-")
}

// isStatic reports whether path is an ELF executable without an
// interpreter.
func isStatic(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// moduleOrder resolves names against modules.dep and returns the module
// files (relative to modDir) in load order, dependencies first. Names the
// kernel has built in (no file) are left out.
func moduleOrder(modDir string, names []string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return nil, err
	}
	deps := map[string][]string{}
	byName := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		i := strings.IndexByte(line, ':')
		if i < 0 {
			continue
		}
		file := line[:i]
		deps[file] = strings.Fields(line[i+1:])
		byName[modName(file)] = file
	}
	var out []string
	seen := map[string]bool{}
	var visit func(string)
	visit = func(f string) {
		if seen[f] {
			return
		}
		seen[f] = true
		for _, d := range deps[f] {
			visit(d)
		}
		out = append(out, f)
	}
	for _, n := range names {
		if f, ok := byName[n]; ok {
			visit(f)
		}
	}
	return out, nil
}

// modName is the module name of a file path (dashes as underscores).
func modName(file string) string {
	n := filepath.Base(file)
	n = n[:strings.Index(n, ".ko")]
	return strings.ReplaceAll(n, "-", "_")
}

// repoRoot is the module root (two levels above this package).
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(filepath.Dir(wd))
}

// TestIPsec boots the VM and reports each scenario test that ran in it as
// a subtest (`make test-ipsec`). IPSECVM_RUN selects scenarios (a -run
// pattern for the test binary inside); IPSECVM_KEEP=1 keeps the work
// directory (initramfs, console log, the VM's /out).
func TestIPsec(t *testing.T) {
	tools := findTools(t)
	begin := time.Now()
	work := t.TempDir()
	if os.Getenv("IPSECVM_KEEP") != "" {
		var err error
		if work, err = os.MkdirTemp("", "ipsecvm-"); err != nil {
			t.Fatal(err)
		}
		t.Logf("work directory kept: %s", work)
	}
	root := filepath.Join(work, "root")
	bin := filepath.Join(root, "bin")
	for _, d := range []string{bin, "sbin", "etc", "mods", "proc", "sys", "dev", "run", "tmp", OutDir} {
		if !filepath.IsAbs(d) || d == OutDir {
			d = filepath.Join(root, d)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src := repoRoot(t)
	build(t, src, bin)
	t.Logf("ipsecvm: binaries built in %v", time.Since(begin).Round(time.Millisecond))

	dsn, _ := pgtest.Migrated(t)
	provision(t, filepath.Join(bin, "imsctl"), dsn, work)
	cfg, _ := json.Marshal(Config{DSN: vmDSN(t, dsn)})
	writeFile(t, filepath.Join(root, strings.TrimPrefix(ConfigFile, "/")), cfg, 0o644)

	copyFile(t, tools.busybox, filepath.Join(bin, "busybox"), 0o755)
	copyWithLibs(t, tools.ip, root, "sbin/ip")
	mods, err := moduleOrder(tools.modDir, vmModules)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, m := range mods {
		dst := modName(m) + ".ko"
		copyModule(t, filepath.Join(tools.modDir, m), filepath.Join(root, "mods", dst))
		order = append(order, dst)
	}
	writeFile(t, filepath.Join(root, "init"), []byte(initScript(order, os.Getenv("IPSECVM_RUN"))), 0o755)
	initrd := filepath.Join(work, "initrd.cpio")
	mkCpio(t, tools.busybox, root, initrd)
	outImg := filepath.Join(work, "out.img")
	if err := os.WriteFile(outImg, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(outImg, 256<<20); err != nil {
		t.Fatal(err)
	}

	console, results := filepath.Join(work, "console.log"), filepath.Join(work, "tests.out")
	timeout := 12 * time.Minute
	if v, err := time.ParseDuration(os.Getenv("IPSECVM_TIMEOUT")); err == nil {
		timeout = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := []string{
		"-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", "2048",
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-kernel", tools.kernel, "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 quiet",
		"-serial", "file:" + console, "-serial", "file:" + results,
		"-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0",
		"-drive", "file=" + outImg + ",format=raw,if=virtio",
	}
	boot := time.Now()
	cmd := exec.CommandContext(ctx, tools.qemu, args...)
	out, err := cmd.CombinedOutput()
	vmTime := time.Since(boot)
	t.Logf("ipsecvm: kernel %s under TCG emulation (no KVM), VM ran %v, whole test so far %v", tools.kver, vmTime.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))
	if err != nil {
		t.Errorf("qemu: %v\n%s", err, out)
	}
	extractOut(t, outImg, filepath.Join(work, "out"))
	ok := report(t, results)
	if !ok || t.Failed() {
		logTail(t, "VM console", console, 8000)
		logs, _ := filepath.Glob(filepath.Join(work, "out", "*.log"))
		for _, l := range logs {
			logTail(t, filepath.Base(l), l, 6000)
		}
	}
}

// build compiles the binaries the VM runs, static, and the scenario test
// binary (build tag ipsecvm).
func build(t *testing.T, src, bin string) {
	t.Helper()
	env := append(os.Environ(), "CGO_ENABLED=0")
	pkgs := []string{"./cmd/pcscf", "./cmd/icscf", "./cmd/scscf", "./cmd/hss", "./cmd/imsctl", "./cmd/imsue"}
	cmd := exec.Command("go", append([]string{"build", "-ldflags", "-s -w", "-o", bin + "/"}, pkgs...)...)
	cmd.Dir, cmd.Env = src, env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd = exec.Command("go", "test", "-c", "-tags", "ipsecvm", "-ldflags", "-s -w", "-o", filepath.Join(bin, "scenarios.test"), "./e2e/ipsecvm")
	cmd.Dir, cmd.Env = src, env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go test -c -tags ipsecvm: %v\n%s", err, out)
	}
}

// provision adds subscribers ue1..ueN (test set 1 keys) with imsctl.
func provision(t *testing.T, imsctl, dsn, work string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("impi,impu,k,op,amf,sqn\n")
	for i := 1; i <= NumUsers; i++ {
		fmt.Fprintf(&b, "ue%d@%s,sip:ue%d@%s,%s,%s,%s,%d\n", i, Domain, i, Domain, K, OP, AMF, 0)
	}
	csv := filepath.Join(work, "subscribers.csv")
	writeFile(t, csv, []byte(b.String()), 0o644)
	cmd := exec.Command(imsctl, "subscriber", "import", csv)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dsn)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("imsctl subscriber import: %v\n%s", err, out)
	}
}

// vmDSN is dsn as the VM reaches it: a server on the host's loopback is
// 10.0.2.2 in qemu's user network.
func vmDSN(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	switch h := u.Hostname(); h {
	case "127.0.0.1", "localhost", "::1", "":
		port := u.Port()
		if port == "" {
			port = "5432"
		}
		u.Host = "10.0.2.2:" + port
	}
	return u.String()
}

// initScript is the VM's /init: modules, the three network namespaces of
// the package comment, then the scenario tests in netns ue (their output
// on the second serial port, in test2json framing), /out onto the output
// disk as a tar stream, power off.
func initScript(mods []string, run string) string {
	runArg := ""
	if run != "" {
		runArg = "-test.run '" + strings.ReplaceAll(run, "'", "") + "'"
	}
	return `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/sbin:/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mkdir -p /run /tmp ` + OutDir + `; mount -t tmpfs run /run; mount -t tmpfs tmp /tmp
for m in ` + strings.Join(mods, " ") + `; do insmod /mods/$m 2>/dev/null || echo "ipsecvm: insmod $m failed"; done
/sbin/ip link set lo up
/sbin/ip link set eth0 up && /sbin/ip addr add 10.0.2.15/24 dev eth0 && /sbin/ip route add default via 10.0.2.2
/sbin/ip netns add pcscf
/sbin/ip netns add ue
/sbin/ip -n pcscf link set lo up
/sbin/ip -n ue link set lo up
/sbin/ip link add core0 type veth peer name mw0 netns pcscf
/sbin/ip addr add ` + CoreIP + `/30 dev core0; /sbin/ip link set core0 up
/sbin/ip -n pcscf addr add ` + PCSCFMwIP + `/30 dev mw0; /sbin/ip -n pcscf link set mw0 up
/sbin/ip route add ` + UENet + `0/24 via ` + PCSCFMwIP + `
/sbin/ip -n pcscf link add ` + PCSCFLink + ` type veth peer name ` + UELink + ` netns ue
/sbin/ip -n pcscf addr add ` + PCSCFIP + `/24 dev ` + PCSCFLink + `; /sbin/ip -n pcscf link set ` + PCSCFLink + ` up
/sbin/ip -n pcscf route add default via ` + CoreIP + `
/sbin/ip netns exec pcscf sysctl -qw net.ipv4.ip_forward=1
i=101; while [ $i -le 160 ]; do /sbin/ip -n ue addr add ` + UENet + `$i/24 dev ` + UELink + `; i=$((i+1)); done
/sbin/ip -n ue link set ` + UELink + ` up
/sbin/ip -n ue route add default via ` + PCSCFIP + `
stty -F /dev/ttyS1 raw -echo 2>/dev/null
echo "ipsecvm: network up, running scenarios"
cd /tmp && /sbin/ip netns exec ue /bin/scenarios.test -test.v=test2json -test.count=1 -test.timeout=9m ` + runArg + ` >/dev/ttyS1 2>&1
echo "ipsecvm: scenarios exited $?"
/sbin/ip -s xfrm state > ` + OutDir + `/xfrm-root.txt 2>&1
cd ` + OutDir + ` && tar cf /dev/vda .
sync
poweroff -f
`
}

// mkCpio packs root as a newc initramfs with busybox's cpio.
func mkCpio(t *testing.T, busybox, root, dst string) {
	t.Helper()
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var list bytes.Buffer
	err = filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel != "." {
			list.WriteString(rel + "\n")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(busybox, "cpio", "-o", "-H", "newc")
	cmd.Dir, cmd.Stdin, cmd.Stdout = root, &list, f
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("cpio: %v: %s", err, stderr.String())
	}
}

// copyWithLibs copies a dynamically linked program and the libraries ldd
// names (with the loader) into root.
func copyWithLibs(t *testing.T, prog, root, rel string) {
	t.Helper()
	copyFile(t, prog, filepath.Join(root, rel), 0o755)
	out, err := exec.Command("ldd", prog).Output()
	if err != nil {
		return // static
	}
	re := regexp.MustCompile(`(/[^ ]+\.so[^ ]*)`)
	for _, m := range re.FindAllString(string(out), -1) {
		dst := filepath.Join(root, m)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		copyFile(t, m, dst, 0o755)
	}
}

// copyModule copies a kernel module, decompressing .ko.xz with busybox.
func copyModule(t *testing.T, src, dst string) {
	t.Helper()
	if !strings.HasSuffix(src, ".xz") {
		copyFile(t, src, dst, 0o644)
		return
	}
	out, err := exec.Command("xz", "-dc", src).Output()
	if err != nil {
		missingTool(t, fmt.Sprintf("ipsecvm: module %s is xz-compressed and xz failed (apt-get install xz-utils): %v", src, err))
	}
	writeFile(t, dst, out, 0o644)
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dst, b, mode)
}

func writeFile(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
}

// extractOut unpacks the tar stream the VM wrote to its output disk.
func extractOut(t *testing.T, img, dir string) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Logf("ipsecvm: output disk: %v", err)
			}
			return
		}
		name := filepath.Join(dir, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			_ = os.MkdirAll(name, 0o755)
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			writeFile(t, name, b, 0o644)
		}
	}
}

// event is one line of go tool test2json.
type event struct {
	Action  string
	Test    string
	Output  string
	Elapsed float64
}

// report turns the scenario binary's output into subtests of t (same
// names without the Test prefix, same results and output). It returns
// false when the binary did not finish (no final pass/fail).
func report(t *testing.T, results string) bool {
	t.Helper()
	raw, err := os.ReadFile(results)
	if err != nil {
		t.Errorf("ipsecvm: no scenario output: %v", err)
		return false
	}
	raw = bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
	cmd := exec.Command("go", "tool", "test2json", "-t")
	cmd.Stdin = bytes.NewReader(raw)
	out, err := cmd.Output()
	if err != nil {
		t.Errorf("go tool test2json: %v", err)
		return false
	}
	type result struct {
		action string
		output strings.Builder
	}
	byTest := map[string]*result{}
	var order []string
	finished := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var global strings.Builder
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		if e.Test == "" {
			if e.Action == "pass" || e.Action == "fail" {
				finished = true
				if e.Action == "fail" && len(byTest) == 0 {
					t.Errorf("ipsecvm: the scenario binary failed before any test:\n%s", global.String())
				}
			}
			global.WriteString(e.Output)
			continue
		}
		r := byTest[e.Test]
		if r == nil {
			r = &result{}
			byTest[e.Test] = r
			order = append(order, e.Test)
		}
		switch e.Action {
		case "output":
			r.output.WriteString(e.Output)
		case "pass", "fail", "skip":
			r.action = e.Action
		}
	}
	if !finished {
		t.Errorf("ipsecvm: the scenario binary did not finish (VM stopped or timed out); output so far:\n%s", tailString(global.String(), 4000))
	}
	// Top-level tests as subtests; their subtests nested.
	var run func(t *testing.T, prefix string)
	run = func(t *testing.T, prefix string) {
		for _, name := range order {
			if !strings.HasPrefix(name, prefix) || strings.Contains(name[len(prefix):], "/") {
				continue
			}
			r := byTest[name]
			short := strings.TrimPrefix(name[len(prefix):], "Test")
			t.Run(short, func(t *testing.T) {
				if out := strings.TrimSpace(r.output.String()); out != "" {
					t.Log("\n" + out)
				}
				run(t, name+"/")
				switch r.action {
				case "fail":
					t.Fail()
				case "skip":
					t.Skip("skipped in the VM")
				case "":
					t.Error("did not finish in the VM")
				}
			})
		}
	}
	run(t, "")
	return finished
}

func logTail(t *testing.T, what, path string, n int) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	t.Logf("---- %s (tail) ----\n%s", what, tailString(string(b), n))
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
