package advisory

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/bulwark-sec/bulwark/advisory/cvss"
	"github.com/bulwark-sec/bulwark/advisory/osv"
	"github.com/bulwark-sec/bulwark/severity"
)

// Package blobs are a compact binary encoding of []entry, not JSON: the
// packages with most advisories (an AlmaLinux kernel: hundreds of
// records) are decoded on every match, and JSON decoding was most of the
// match time (BenchmarkMatch500 profile).
//
//	uvarint count, then per entry:
//	uvarint adv, str eco, str name, byte hasGit, str rating,
//	uvarint ranges: (str type, uvarint events: (byte kind, str value)...)...,
//	uvarint versions: str..., uvarint severities: (str type, str score)...
//
// where str is a uvarint length and the bytes.

const (
	evIntroduced byte = iota
	evFixed
	evLastAffected
	evLimit
)

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func encodeEntries(es []entry) []byte {
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(es)))
	for _, e := range es {
		b = binary.AppendUvarint(b, uint64(e.Adv))
		b = appendStr(b, e.Eco)
		b = appendStr(b, e.Name)
		if e.HasGit {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
		b = appendStr(b, e.Rating)
		b = binary.AppendUvarint(b, uint64(len(e.Ranges)))
		for _, r := range e.Ranges {
			b = appendStr(b, r.Type)
			b = binary.AppendUvarint(b, uint64(len(r.Events)))
			for _, ev := range r.Events {
				switch {
				case ev.Introduced != "":
					b = append(b, evIntroduced)
					b = appendStr(b, ev.Introduced)
				case ev.Fixed != "":
					b = append(b, evFixed)
					b = appendStr(b, ev.Fixed)
				case ev.LastAffected != "":
					b = append(b, evLastAffected)
					b = appendStr(b, ev.LastAffected)
				default:
					b = append(b, evLimit)
					b = appendStr(b, ev.Limit)
				}
			}
		}
		b = binary.AppendUvarint(b, uint64(len(e.Versions)))
		for _, v := range e.Versions {
			b = appendStr(b, v)
		}
		b = binary.AppendUvarint(b, uint64(len(e.Severity)))
		for _, s := range e.Severity {
			b = appendStr(b, s.Type)
			b = appendStr(b, s.Score)
		}
	}
	return b
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad varint", ErrCorrupt)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a count and checks it against the bytes left (every item
// takes at least one byte), so a corrupt count cannot allocate much.
func (d *decoder) count() int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: count %d with %d bytes left", ErrCorrupt, n, len(d.b))
		return 0
	}
	return int(n)
}

func (d *decoder) byte1() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = fmt.Errorf("%w: short blob", ErrCorrupt)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: string of %d with %d bytes left", ErrCorrupt, n, len(d.b))
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func decodeEntries(b []byte) ([]entry, error) {
	d := &decoder{b: b}
	n := d.count()
	es := make([]entry, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		var e entry
		e.Adv = uint32(d.uvarint())
		e.Eco = d.str()
		e.Name = d.str()
		e.HasGit = d.byte1() == 1
		e.Rating = d.str()
		nr := d.count()
		for j := 0; j < nr && d.err == nil; j++ {
			r := osv.Range{Type: d.str()}
			ne := d.count()
			r.Events = make([]osv.Event, 0, ne)
			for k := 0; k < ne && d.err == nil; k++ {
				kind := d.byte1()
				v := d.str()
				switch kind {
				case evIntroduced:
					r.Events = append(r.Events, osv.Event{Introduced: v})
				case evFixed:
					r.Events = append(r.Events, osv.Event{Fixed: v})
				case evLastAffected:
					r.Events = append(r.Events, osv.Event{LastAffected: v})
				case evLimit:
					r.Events = append(r.Events, osv.Event{Limit: v})
				default:
					d.err = fmt.Errorf("%w: event kind %d", ErrCorrupt, kind)
				}
			}
			e.Ranges = append(e.Ranges, r)
		}
		nv := d.count()
		for j := 0; j < nv && d.err == nil; j++ {
			e.Versions = append(e.Versions, d.str())
		}
		ns := d.count()
		for j := 0; j < ns && d.err == nil; j++ {
			e.Severity = append(e.Severity, osv.Severity{Type: d.str(), Score: d.str()})
		}
		es = append(es, e)
	}
	if d.err != nil {
		return nil, d.err
	}
	return es, nil
}

// Summaries use the same encoding, for the same reason (they are read for
// every match):
//
//	str id, strs aliases, strs related, strs upstream, str summary,
//	severity: byte level, str source, float score, str rating,
//	          uvarint n, (str version, str vector, float base, byte level)...,
//	varint published, modified, withdrawn (Unix ns, 0 when unset),
//	strs ecosystems
//
// where strs is a uvarint count and strs, float the IEEE bits as uvarint.

func appendStrs(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendStr(b, s)
	}
	return b
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(b, 0)
	}
	return binary.AppendVarint(b, t.UnixNano())
}

func encodeSummary(s *summary) []byte {
	var b []byte
	b = appendStr(b, s.ID)
	b = appendStrs(b, s.Aliases)
	b = appendStrs(b, s.Related)
	b = appendStrs(b, s.Upstream)
	b = appendStr(b, s.Summary)
	b = append(b, byte(s.Severity.Level))
	b = appendStr(b, s.Severity.Source)
	b = binary.AppendUvarint(b, math.Float64bits(s.Severity.Score))
	b = appendStr(b, s.Severity.Rating)
	b = binary.AppendUvarint(b, uint64(len(s.Severity.CVSS)))
	for _, c := range s.Severity.CVSS {
		b = appendStr(b, c.Version)
		b = appendStr(b, c.Vector)
		b = binary.AppendUvarint(b, math.Float64bits(c.Base))
		b = append(b, byte(c.Level))
	}
	b = appendTime(b, s.Published)
	b = appendTime(b, s.Modified)
	b = appendTime(b, s.Withdrawn)
	return appendStrs(b, s.Ecosystems)
}

func (d *decoder) strs() []string {
	n := d.count()
	if n == 0 {
		return nil
	}
	out := make([]string, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		out = append(out, d.str())
	}
	return out
}

func (d *decoder) time() time.Time {
	if d.err != nil {
		return time.Time{}
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad varint", ErrCorrupt)
		return time.Time{}
	}
	d.b = d.b[n:]
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v).UTC()
}

func decodeSummary(b []byte) (*summary, error) {
	d := &decoder{b: b}
	s := &summary{ID: d.str(), Aliases: d.strs(), Related: d.strs(), Upstream: d.strs(), Summary: d.str()}
	s.Severity.Level = severity.Level(d.byte1())
	s.Severity.Source = d.str()
	s.Severity.Score = math.Float64frombits(d.uvarint())
	s.Severity.Rating = d.str()
	n := d.count()
	for i := 0; i < n && d.err == nil; i++ {
		c := cvss.Score{Version: d.str(), Vector: d.str()}
		c.Base = math.Float64frombits(d.uvarint())
		c.Level = severity.Level(d.byte1())
		s.Severity.CVSS = append(s.Severity.CVSS, c)
	}
	s.Published, s.Modified, s.Withdrawn = d.time(), d.time(), d.time()
	s.Ecosystems = d.strs()
	if d.err != nil {
		return nil, d.err
	}
	return s, nil
}
