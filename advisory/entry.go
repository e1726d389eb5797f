package advisory

import (
	"encoding/binary"
	"fmt"

	"github.com/bulwark-sec/bulwark/advisory/osv"
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
