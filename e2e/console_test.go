package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// needChromium returns Debian's chromium, or skips.
func needChromium(t testing.TB) string {
	t.Helper()
	for _, n := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	t.Skip("chromium not installed (Debian package chromium)")
	return ""
}

// browser starts headless Chromium with a fresh profile, driven by
// chromedp over the DevTools protocol.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(needChromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser (no timeout on this first call)
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestConsole adds an AKA subscriber through the HSS's web console in a
// real browser (headless Chromium), registers it with sipp through
// I-CSCF → S-CSCF → HSS, sees the console show it registered, and
// de-registers it from the console (RTR to the S-CSCF).
func TestConsole(t *testing.T) {
	needSipp(t)
	ctx := browser(t)
	l := newEmptyLab(t, freePort(t))
	l.icscf, l.scscf = freePort(t), freePort(t)
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "tokens")
	const token = "console-test-token-0123456789"
	if err := os.WriteFile(tokenFile, []byte("admin "+token+" e2e\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l.start("hss", "--diameter-listen", fmt.Sprintf("127.0.0.1:%d", l.hssPort), "--domain", domain,
		"--api-listen", apiAddr, "--api-tokens-file", tokenFile)
	l.startSCSCF()
	l.startICSCF()
	for _, n := range []string{"hss", "scscf", "icscf"} {
		l.waitReady(n, 15*time.Second)
	}
	base := "http://" + apiAddr
	impi, impu := "carol@"+domain, "sip:carol@"+domain
	page := base + "/console/subscribers/" + url.PathEscape(impi)
	stateSel := `td.state[data-impu="` + impu + `"]`

	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("subscribers")),
		chromedp.Click(chromedp.ID("add")),
		chromedp.WaitVisible(chromedp.ID("subscriber-form")),
		chromedp.SendKeys(chromedp.ID("impi"), impi),
		chromedp.SetValue(chromedp.ID("impus"), impu+"\ntel:+15550199 barred\n"),
		chromedp.SendKeys(chromedp.ID("k"), set1K),
		chromedp.SendKeys(chromedp.ID("op"), set1OP),
		chromedp.SendKeys(chromedp.ID("amf"), set1AMF),
		chromedp.Click(chromedp.ID("save")),
		chromedp.WaitVisible(chromedp.ID("done")),
	)
	if err != nil {
		t.Fatalf("adding the subscriber in the console: %v", err)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if done := text("#done"); err != nil || done != "added" || !strings.HasSuffix(loc, "/console/subscribers/"+url.PathEscape(impi)+"?done=added") {
		t.Fatalf("after adding: %q at %s %v", done, loc, err)
	}
	// Stored as the console was told (imsctl reads the same rows).
	if out := l.imsctl("subscriber", "show", impi); !strings.Contains(out, "AKA: K set, OP set, AMF 8000") ||
		!strings.Contains(out, "IMPU tel:+15550199 type=public_user_identity state=not_registered profile=default") ||
		!strings.Contains(out, "BARRED") {
		t.Fatalf("imsctl show after the console added it:\n%s", out)
	}
	if state := text(stateSel); state != "not_registered" {
		t.Fatalf("state before registering: %q", state)
	}

	l.sippAKA(t, "carol", 600)
	if _, ok := l.registrar().find(impu); !ok {
		t.Fatal("the S-CSCF has no registration for carol")
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	if state := text(stateSel); state != "registered" {
		t.Fatalf("after the sipp registration the console shows %q", state)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/console/subscribers?q=carol")); err != nil {
		t.Fatal(err)
	}
	if list := text("#subscribers"); !strings.Contains(list, impi) || !strings.Contains(list, "registered") || strings.Contains(list, "not registered") {
		t.Fatalf("the list after the sipp registration: %q", list)
	}

	// De-register from the console: RTR to the S-CSCF, which ends the binding.
	if err := chromedp.Do(ctx, chromedp.Navigate(page), chromedp.Click(chromedp.ID("deregister")), chromedp.WaitVisible(chromedp.ID("done"))); err != nil {
		t.Fatal(err)
	}
	if done, state := text("#done"), text(stateSel); done != impu+": answered" || state != "not_registered" {
		t.Fatalf("de-register from the console: %q, state %q", done, state)
	}
	if _, ok := l.registrar().find(impu); ok {
		t.Fatal("the S-CSCF still has carol after the RTR")
	}
}
