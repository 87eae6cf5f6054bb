package imsue

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// LoadConfig runs many UEs as a load generator: UE i (Start ≤ i <
// Start+Count) has the identities of the formats with i, the other
// settings of Base, and its own ports on the same address.
type LoadConfig struct {
	Base       Config
	IMPIFormat string // e.g. "ue%d@ims.example.org"
	IMPUFormat string // e.g. "sip:ue%d@ims.example.org"
	Start      int
	Count      int
	// Rate is how many UEs start their registration per second.
	Rate float64
	// Hold is how long the UEs stay registered before de-registering
	// (0: de-register at once).
	Hold time.Duration
	// Calls: UE 2k calls UE 2k+1 once registered, and hangs up after
	// CallHold.
	Calls    bool
	CallHold time.Duration
}

// LoadResult sums up a run.
type LoadResult struct {
	UEs         int      `json:"ues"`
	Registered  int      `json:"registered"`
	Failed      int      `json:"failed"`
	Calls       int      `json:"calls"`
	CallsFailed int      `json:"calls_failed"`
	RegP50Ms    float64  `json:"register_p50_ms"`
	RegP95Ms    float64  `json:"register_p95_ms"`
	Seconds     float64  `json:"seconds"`
	RatePerSec  float64  `json:"registrations_per_second"`
	Errors      []string `json:"errors,omitempty"` // the first few
}

// RunLoad starts lc.Count UEs at lc.Rate per second, each registering
// (with IPsec per Base.IPsec), optionally calling its neighbour, holding,
// and de-registering. Every UE's events go to Base.OnEvent.
func RunLoad(ctx context.Context, lc LoadConfig) LoadResult {
	if lc.Rate <= 0 {
		lc.Rate = 10
	}
	var (
		mu    sync.Mutex
		res   = LoadResult{UEs: lc.Count}
		times []float64
		wg    sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if len(res.Errors) < 10 {
			res.Errors = append(res.Errors, err.Error())
		}
		mu.Unlock()
	}
	ues := make([]*UE, lc.Count)
	regd := make([]chan bool, lc.Count)
	for i := range regd {
		regd[i] = make(chan bool, 1)
	}
	begin := time.Now()
	tick := time.NewTicker(time.Duration(float64(time.Second) / lc.Rate))
	defer tick.Stop()
	for i := 0; i < lc.Count; i++ {
		if i > 0 {
			select {
			case <-tick.C:
			case <-ctx.Done():
				lc.Count = i
			}
		}
		if i >= lc.Count {
			break
		}
		c := lc.Base
		c.IMPI = fmt.Sprintf(lc.IMPIFormat, lc.Start+i)
		c.IMPU = fmt.Sprintf(lc.IMPUFormat, lc.Start+i)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ok := false
			defer func() { regd[i] <- ok }()
			u, err := New(c)
			if err != nil {
				fail(err)
				mu.Lock()
				res.Failed++
				mu.Unlock()
				return
			}
			ues[i] = u
			t0 := time.Now()
			if err := u.Register(ctx); err != nil {
				fail(fmt.Errorf("%s: %w", c.IMPU, err))
				mu.Lock()
				res.Failed++
				mu.Unlock()
				return
			}
			ok = true
			mu.Lock()
			res.Registered++
			times = append(times, ms(time.Since(t0)))
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	res.Seconds = time.Since(begin).Seconds()
	if res.Seconds > 0 {
		res.RatePerSec = float64(res.Registered) / res.Seconds
	}
	sort.Float64s(times)
	if n := len(times); n > 0 {
		res.RegP50Ms, res.RegP95Ms = times[n/2], times[(n*95)/100]
	}
	if lc.Calls {
		for i := 0; i+1 < lc.Count; i += 2 {
			a, b := ues[i], ues[i+1]
			if a == nil || b == nil || !<-regd[i] || !<-regd[i+1] {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				call, err := a.Call(ctx, b.IMPU(), CallOptions{})
				mu.Lock()
				res.Calls++
				mu.Unlock()
				if err != nil {
					fail(err)
					mu.Lock()
					res.CallsFailed++
					mu.Unlock()
					return
				}
				time.Sleep(lc.CallHold)
				if err := call.Hangup(ctx); err != nil {
					fail(err)
				}
			}()
		}
		wg.Wait()
	}
	if lc.Hold > 0 {
		select {
		case <-time.After(lc.Hold):
		case <-ctx.Done():
		}
	}
	dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, u := range ues {
		if u == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if u.Registered() {
				if err := u.Deregister(dctx); err != nil {
					fail(err)
				}
			}
			_ = u.Close()
		}()
	}
	wg.Wait()
	return res
}
