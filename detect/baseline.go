package detect

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// BaselineStore keeps what baseline rules learned.
type BaselineStore interface {
	// Observe records that rule saw value for key at time at, and reports
	// whether this is an anomaly: the value was never seen for the key and
	// the key's learning period (from its first observation) is over. A
	// value is reported once: it is learned as it is reported.
	Observe(rule, key, value string, at time.Time, learning time.Duration) bool
}

// Baselines is a BaselineStore in memory, optionally saved to a JSON file
// (Save writes it atomically; OpenBaselines reads it back), so that a
// restart neither forgets nor re-learns. It bounds what it keeps: at most
// MaxKeys keys per rule and MaxValues values per key; past those, new keys
// and values are not learned and not reported (counted in Dropped).
type Baselines struct {
	mu        sync.Mutex
	path      string
	data      map[string]map[string]*baselineKey // rule -> key -> learned
	dirty     bool
	MaxKeys   int
	MaxValues int
	Dropped   int64
}

type baselineKey struct {
	First  time.Time           `json:"first"`
	Values map[string]struct{} `json:"-"`
	List   []string            `json:"values"`
}

// NewMemoryBaselines returns baselines kept in memory only.
func NewMemoryBaselines() *Baselines {
	return &Baselines{data: map[string]map[string]*baselineKey{}, MaxKeys: 100_000, MaxValues: 1024}
}

// OpenBaselines reads baselines saved at path (none yet is fine) and saves
// to it on Save.
func OpenBaselines(path string) (*Baselines, error) {
	b := NewMemoryBaselines()
	b.path = path
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return nil, fmt.Errorf("baselines: %w", err)
	}
	if err := json.Unmarshal(data, &b.data); err != nil {
		return nil, fmt.Errorf("baselines %s: %w", path, err)
	}
	for _, keys := range b.data {
		for _, k := range keys {
			k.Values = make(map[string]struct{}, len(k.List))
			for _, v := range k.List {
				k.Values[v] = struct{}{}
			}
		}
	}
	return b, nil
}

// Observe implements BaselineStore.
func (b *Baselines) Observe(rule, key, value string, at time.Time, learning time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	keys := b.data[rule]
	if keys == nil {
		keys = map[string]*baselineKey{}
		b.data[rule] = keys
	}
	k := keys[key]
	if k == nil {
		if len(keys) >= b.MaxKeys {
			b.Dropped++
			return false
		}
		k = &baselineKey{First: at, Values: map[string]struct{}{}}
		keys[key] = k
		b.dirty = true
	}
	if _, seen := k.Values[value]; seen {
		return false
	}
	if len(k.Values) >= b.MaxValues {
		b.Dropped++
		return false
	}
	k.Values[value] = struct{}{}
	k.List = append(k.List, value)
	b.dirty = true
	return at.Sub(k.First) >= learning
}

// Known reports whether value was learned for key.
func (b *Baselines) Known(rule, key, value string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.data[rule][key]
	if k == nil {
		return false
	}
	_, ok := k.Values[value]
	return ok
}

// Save writes the baselines to their file (temp file and rename), if they
// changed since the last save. Without a file it does nothing.
func (b *Baselines) Save() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.path == "" || !b.dirty {
		return nil
	}
	data, err := json.Marshal(b.data)
	if err != nil {
		return fmt.Errorf("baselines: %w", err)
	}
	if err := WriteFileAtomic(b.path, data); err != nil {
		return fmt.Errorf("baselines: %w", err)
	}
	b.dirty = false
	return nil
}

// WriteFileAtomic writes data to path through a temporary file in the same
// directory, synced and renamed, so that readers see the old or the new
// content, never a part.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
