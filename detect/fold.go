package detect

import (
	"encoding/json"
	"sync"
	"time"
)

// Folder folds repeats of an alert (same DedupeKey) within a window, so
// that a noisy rule prints one line, not thousands: the first alert of a
// key passes; repeats within the window are counted; the next alert after
// the window passes carrying the count and evidence of those it folded.
// The store folds again (store.AlertStore.RecordAlert), so this bounds
// output, not correctness. It keeps at most max keys (oldest dropped).
type Folder struct {
	window time.Duration
	max    int
	mu     sync.Mutex
	keys   map[string]*folded
}

type folded struct {
	last  time.Time // when the key last passed
	count int64     // alerts folded since
	first time.Time
	alert Alert // newest folded, for its evidence
}

// NewFolder returns a Folder; window <= 0 lets every alert pass.
func NewFolder(window time.Duration, max int) *Folder {
	if max <= 0 {
		max = 100_000
	}
	return &Folder{window: window, max: max, keys: map[string]*folded{}}
}

// Fold reports whether a should be emitted, and returns it with the folded
// repeats' count and evidence added.
func (f *Folder) Fold(a Alert) (Alert, bool) {
	if f.window <= 0 {
		return a, true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := f.keys[a.DedupeKey]
	if k == nil {
		if len(f.keys) >= f.max {
			f.evict(a.LastSeen)
		}
		f.keys[a.DedupeKey] = &folded{last: a.LastSeen}
		return a, true
	}
	if a.LastSeen.Sub(k.last) < f.window {
		if k.count == 0 {
			k.first = a.FirstSeen
		}
		k.count += max(a.Count, 1)
		k.alert = a
		return Alert{}, false
	}
	if k.count > 0 {
		a.Count = max(a.Count, 1) + k.count
		a.FirstSeen = k.first
		ev := append(append([]json.RawMessage(nil), k.alert.Evidence...), a.Evidence...)
		if len(ev) > MaxEvidence {
			ev = ev[len(ev)-MaxEvidence:]
		}
		a.Evidence = ev
	}
	k.last, k.count, k.alert = a.LastSeen, 0, Alert{}
	return a, true
}

// Flush returns the alerts folded but not yet emitted (at shutdown), and
// forgets them.
func (f *Folder) Flush() []Alert {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Alert
	for key, k := range f.keys {
		if k.count > 0 {
			a := k.alert
			a.Count, a.FirstSeen = k.count, k.first
			out = append(out, a)
		}
		delete(f.keys, key)
	}
	return out
}

func (f *Folder) evict(now time.Time) {
	for key, k := range f.keys {
		if now.Sub(k.last) >= f.window || len(f.keys) >= f.max {
			delete(f.keys, key)
		}
		if len(f.keys) < f.max*3/4 {
			return
		}
	}
}
