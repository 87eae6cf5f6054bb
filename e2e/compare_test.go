package e2e

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCompare is `make bench-compare`: the load steps of load_test.go
// (COMPARE_STEPS) through our chain and through a Kamailio 5.6 IMS chain
// (P-CSCF testdata/kamailio/pcscf.cfg, I-CSCF and S-CSCF of the interop
// test) on the same HSS and database, alternated step by step (the
// order swapped every round, COMPARE_ROUNDS rounds), then a table of
// every run and, per chain and kind of step, the highest rate sustained
// (≤ 0.1 % of the flows failed, p99 ≤ 1 s, nothing unanswered) with its
// CPU per flow and process. Skipped unless COMPARE_STEPS is set.
func TestCompare(t *testing.T) {
	steps, err := parseLoadSteps(os.Getenv("COMPARE_STEPS"))
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) == 0 {
		t.Skip("set COMPARE_STEPS (see make bench-compare)")
	}
	rounds, _ := strconv.Atoi(os.Getenv("COMPARE_ROUNDS"))
	if rounds <= 0 {
		rounds = 1
	}
	needSipp(t)
	k := needKamailio(t)
	kamIcscfHost, kamScscfHost := "kam-icscf."+domain, "kam-scscf."+domain
	// One HSS for both chains: it accepts both chains' Diameter peers.
	var peers []string
	for _, h := range []string{"icscf.", "scscf.", "pcscf.", "kam-icscf.", "kam-scscf."} {
		peers = append(peers, "--peer", h+domain)
	}
	t.Setenv("BENCH_HSS_ARGS", strings.TrimSpace(os.Getenv("BENCH_HSS_ARGS")+" "+strings.Join(peers, " ")))
	ours := startOurChain(t)
	kam := startKamailioChain(t, k, ours.l, kamIcscfHost, kamScscfHost)
	chains := []*loadChain{ours, kam}

	var results []stepResult
	var restarts []string
	last := map[string]loadStep{}
	for round := 0; round < rounds; round++ {
		for _, st := range steps {
			order := chains
			if round%2 == 1 {
				order = []*loadChain{kam, ours}
			}
			for _, ch := range order {
				if ch.revive != nil {
					for _, n := range ch.revive(t) {
						restarts = append(restarts, fmt.Sprintf("%s: %s during or after its step %s; restarted before %s", ch.name, n, last[ch.name], st))
					}
				}
				last[ch.name] = st
				r := runLoadStep(t, ch, st)
				t.Logf("%s", r.row(procNames(ch)))
				results = append(results, r)
				waitQuiet(t)
			}
		}
	}
	fmt.Print(compareReport(results, chains))
	if len(restarts) > 0 {
		fmt.Println("\nProcesses that exited during the runs (restarted, same configuration and ports, before the next step):")
		for _, n := range restarts {
			fmt.Println("- " + n)
		}
	}
}

// procNames are the measured processes of ch plus PostgreSQL.
func procNames(ch *loadChain) []string {
	var out []string
	for _, p := range ch.procs {
		out = append(out, p.name)
	}
	return append(out, "postgres")
}

// compareReport is the summary (highest sustained rate per chain and
// kind, CPU per flow of the CSCFs at that rate) and every run.
func compareReport(results []stepResult, chains []*loadChain) string {
	var b strings.Builder
	fmt.Fprintf(&b, "bench-compare (%d-s steps, %d cores; CPU: utime+stime from /proc per completed flow; postgres: every PostgreSQL process of the host):\n\n", loadStepSeconds(), runtime.NumCPU())
	kinds := []string{}
	seen := map[string]bool{}
	for _, r := range results {
		if !seen[r.step.kind] {
			seen[r.step.kind] = true
			kinds = append(kinds, r.step.kind)
		}
	}
	b.WriteString("| flow | chain | highest rate sustained (≤ 0.1 % failed, p99 ≤ 1 s, none lost) | p50 / p99 there | CPU ms per flow there: P + I + S-CSCF (HSS, postgres) | transactions unanswered, all runs |\n|---|---|---|---|---|---|\n")
	for _, kind := range kinds {
		for _, ch := range chains {
			var best *stepResult
			lost, runs := 0, 0
			for i := range results {
				r := &results[i]
				if r.chain != ch.name || r.step.kind != kind {
					continue
				}
				runs++
				lost += r.unanswered
				if r.passes() && (best == nil || r.step.rate > best.step.rate || (r.step.rate == best.step.rate && r.p99 < best.p99)) {
					best = r
				}
			}
			if best == nil {
				fmt.Fprintf(&b, "| %s | %s | none of the rates tried | — | — | %d in %d runs |\n", kind, ch.name, lost, runs)
				continue
			}
			p, i, s := best.cpuPerOp("pcscf"), best.cpuPerOp("icscf"), best.cpuPerOp("scscf")
			fmt.Fprintf(&b, "| %s | %s | %d/s | %.0f / %.0f ms | %.2f + %.2f + %.2f = %.2f (%.2f, %.2f) | %d in %d runs |\n",
				kind, ch.name, best.step.rate, best.p50, best.p99, p, i, s, p+i+s, best.cpuPerOp("hss"), best.cpuPerOp("postgres"), lost, runs)
		}
	}
	b.WriteString("\nEvery run, in the order run:\n\n" + stepTableHeader + "\n")
	for _, r := range results {
		b.WriteString(r.row([]string{"pcscf", "icscf", "scscf", "hss", "postgres"}) + "\n")
	}
	return b.String()
}

// startKamailioChain starts Kamailio's P-CSCF, I-CSCF and S-CSCF on free
// ports, sized for load (8 SIP workers each, 8 cdp workers, 256 MB of
// shared memory), with the HSS of l; the S-CSCF is provisioned in the HSS.
func startKamailioChain(t *testing.T, k kamailioTools, l *lab, icscfHost, scscfHost string) *loadChain {
	t.Helper()
	pcscfPort, icscfPort, scscfPort := freePort(t), freePort(t), freePort(t)
	scscfURI := fmt.Sprintf("sip:127.0.0.1:%d", scscfPort)
	l.imsctl("scscf", "add", scscfURI, "--diameter-host", scscfHost)
	esc := strings.NewReplacer(":", `\:`)
	size := kamailioConf{Domain: domain, HSSPort: l.hssPort, SCSCFURI: scscfURI, ICSCFPort: icscfPort,
		Debug: 1, Children: 8, CDPWorkers: 8, CDPQueueLength: 1024, ShmMB: 256}
	if d := os.Getenv("IMSCORE_KAMAILIO_DEBUG"); d != "" {
		fmt.Sscan(d, &size.Debug)
	}
	sc, ic, pc := size, size, size
	sc.SIPPort, sc.DiameterPort, sc.DiameterIdentity = scscfPort, freePort(t), scscfHost
	ic.SIPPort, ic.DiameterPort, ic.DiameterIdentity = icscfPort, freePort(t), icscfHost
	ic.SCSCFNameDB, ic.SCSCFURIDB = "scscf", esc.Replace(scscfURI)
	pc.SIPPort = pcscfPort
	pc.SCSCFURI = scscfURI // pua's outbound proxy for the reg-event SUBSCRIBE
	scscf := startKamailio(t, k, "scscf", sc)
	icscf := startKamailio(t, k, "icscf", ic)
	pcscf := startKamailio(t, k, "pcscf", pc)
	scscf.waitPeerOpen(t, 15*time.Second)
	icscf.waitPeerOpen(t, 15*time.Second)
	pcscf.waitUp(t, 15*time.Second)
	ch := &loadChain{name: "kamailio", l: l, entry: pcscfPort, scscf: scscfURI}
	ch.revive = func(t *testing.T) []string {
		var notes []string
		for _, p := range []*kamailioProc{scscf, icscf, pcscf} {
			gone, err := p.exited()
			why := fmt.Sprintf("%s exited (%v)", p.name, err)
			if !gone && p.name != "pcscf" {
				// Alive but with its Diameter connection to the HSS
				// down (the HSS closes a peer that stops answering
				// watchdogs) for 10 s: every REGISTER would time out.
				open := false
				for deadline := time.Now().Add(10 * time.Second); !open && time.Now().Before(deadline); {
					out, _ := p.rpc("cdp.list_peers")
					if open = strings.Contains(out, "I_Open") || strings.Contains(out, "R_Open"); !open {
						time.Sleep(500 * time.Millisecond)
					}
				}
				if !open {
					gone, why = true, p.name+" hung (no open Diameter connection to the HSS for 10 s)"
				}
			}
			if gone {
				notes = append(notes, why)
				p.restart(t)
				if p.name == "pcscf" {
					p.waitUp(t, 15*time.Second)
				} else {
					p.waitPeerOpen(t, 15*time.Second)
				}
			}
		}
		if len(notes) > 0 {
			// Its registrations went with it (memory only).
			ch.shared, ch.pair = [2][]loadUE{}, [2]loadUE{}
		}
		return notes
	}
	for _, p := range []struct {
		name string
		k    *kamailioProc
	}{{"pcscf", pcscf}, {"icscf", icscf}, {"scscf", scscf}} {
		ch.procs = append(ch.procs, loadProc{p.name, p.k.pids})
	}
	ch.procs = append(ch.procs, loadProc{"hss", func() []int { return []int{l.procs["hss"].cmd.Process.Pid} }})
	return ch
}

// pids are Kamailio's main process and every process of its group (the
// workers it forked: Setpgid).
func (p *kamailioProc) pids() []int {
	main := p.cmd.Process.Pid
	out := []int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		// Fields after comm: state, ppid, pgrp.
		if len(f) > 2 && f[2] == strconv.Itoa(main) {
			out = append(out, pid)
		}
	}
	return out
}

// waitUp waits until Kamailio answers on its ctl socket (its modules
// initialised).
func (p *kamailioProc) waitUp(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		select {
		case <-p.done:
			t.Fatalf("kamailio %s exited: %v\n%s", p.name, p.err, tail(p.logs.String(), 6000))
		default:
		}
		if out, err := p.rpc("core.uptime"); err == nil && strings.Contains(out, "uptime") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("kamailio %s not up within %v:\n%s", p.name, within, tail(p.logs.String(), 6000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
