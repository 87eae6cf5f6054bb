package registrar

import (
	"sort"
	"sync"
	"time"

	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/setindex"
	"github.com/imscore/imscore/pkg/userdata"
	"github.com/imscore/imscore/scscf/binding"
)

// record is the in-memory registration; guarded by table.mu.
type record struct {
	aor      string
	impi     string
	impus    []string
	barred   map[string]bool           // canonical IMPU -> barred
	profile  *userdata.IMSSubscription // parsed User-Data (the XML is only in the store)
	charging imsheader.PChargingFunctionAddresses
	contacts []*binding.Contact

	keys        []string // byIMPU keys (guarded by table.mu)
	indexedIMPI string   // byIMPI key
}

func (r *record) snapshot() binding.Registration {
	out := binding.Registration{AOR: r.aor, IMPI: r.impi, IMPUs: append([]string(nil), r.impus...), Charging: r.charging}
	for _, u := range r.impus {
		if r.barred[binding.CanonURI(u)] {
			out.Barred = append(out.Barred, u)
		}
	}
	out.Contacts = make([]binding.Contact, 0, len(r.contacts))
	for _, c := range r.contacts {
		cc := *c
		cc.Path = append([]string(nil), c.Path...)
		out.Contacts = append(out.Contacts, cc)
	}
	return out
}

// table holds the registrations, indexed by AOR, IMPU and IMPI.
type table struct {
	mu     sync.RWMutex
	byAOR  map[string]*record // canonical AOR
	byIMPU map[string]*record // canonical IMPU of every IRS member
	// byIMPI files each record under its IMPI (the records of one IMPI
	// are one per registered AOR); most IMPIs have one record, which
	// pkg/setindex keeps in a plain map slot instead of a map of its own
	// (about 300 bytes per registration less).
	byIMPI setindex.Index[string, *record]
}

func newTable() *table {
	return &table{byAOR: map[string]*record{}, byIMPU: map[string]*record{}, byIMPI: setindex.New[string, *record]()}
}

func (g *table) lookup(impu string) *record {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.byIMPU[binding.CanonURI(impu)]
}

func (g *table) ofIMPI(impi string) []*record {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var out []*record
	g.byIMPI.Each(impi, func(r *record) bool {
		out = append(out, r)
		return true
	})
	return out
}

// put indexes r (new, or with a changed IRS or IMPI).
func (g *table) put(r *record) {
	g.mu.Lock()
	defer g.mu.Unlock()
	key := binding.CanonURI(r.aor)
	if old := g.byAOR[key]; old != nil {
		g.unindexLocked(old)
	}
	g.unindexLocked(r)
	g.byAOR[key] = r
	r.keys = r.keys[:0]
	for _, u := range append([]string{r.aor}, r.impus...) {
		k := binding.CanonURI(u)
		g.byIMPU[k] = r
		r.keys = append(r.keys, k)
	}
	r.indexedIMPI = r.impi
	g.byIMPI.Add(r.impi, r)
}

func (g *table) remove(r *record) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.unindexLocked(r)
}

func (g *table) unindexLocked(r *record) {
	key := binding.CanonURI(r.aor)
	if g.byAOR[key] == r {
		delete(g.byAOR, key)
	}
	for _, k := range r.keys {
		if g.byIMPU[k] == r {
			delete(g.byIMPU, k)
		}
	}
	r.keys = nil
	g.byIMPI.Remove(r.indexedIMPI, r)
}

// all returns every record, by AOR.
func (g *table) all() []*record {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make([]*record, 0, len(g.byAOR))
	for _, r := range g.byAOR {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].aor < out[j].aor })
	return out
}

// dueRecord is a record with a contact whose expiry has passed, and its
// IMPI then.
type dueRecord struct {
	r    *record
	impi string
}

// due returns the records with a contact expired at now, in one pass
// under the read lock: the registrar's Sweep runs it every second over
// every registration, so it neither copies nor sorts the table.
func (g *table) due(now time.Time) []dueRecord {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var out []dueRecord
	for _, r := range g.byAOR {
		for _, c := range r.contacts {
			if !c.Expires.After(now) {
				out = append(out, dueRecord{r, r.impi})
				break
			}
		}
	}
	return out
}
