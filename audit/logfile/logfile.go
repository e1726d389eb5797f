package logfile

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/bulwark-sec/bulwark/audit"
	"github.com/bulwark-sec/bulwark/audit/envelope"
	"github.com/bulwark-sec/bulwark/detect"
)

// Config says what to follow.
type Config struct {
	Path string
	// StatePath is where the position is kept (default Path's name plus
	// ".bulwark-offset" in the same directory is NOT used: set it).
	StatePath string
	// Format of the lines: "audit" (default), "aks" or "gke".
	Format string
	// Poll is how often to look for new lines (default 250ms).
	Poll time.Duration
	// BatchLines bounds the lines handed over at once (default 1000).
	BatchLines int
	// Source names the source in metrics and alerts (default "file:"+Path).
	Source string
	// Once stops at the end of the file instead of following it.
	Once bool
}

// Handler receives batches.
type Handler interface {
	Handle(ctx context.Context, source string, events []*audit.Event) error
	Rejected(ctx context.Context, source, reason string, n int)
}

// State is the persisted position.
type State struct {
	Dev    uint64 `json:"dev"`
	Inode  uint64 `json:"inode"`
	Offset int64  `json:"offset"`
}

// ErrNoState: Config.StatePath is empty.
var ErrNoState = errors.New("logfile: StatePath is required")

// Follow reads the file until ctx ends (or its end, with Once).
func Follow(ctx context.Context, cfg Config, h Handler) error {
	if cfg.StatePath == "" {
		return ErrNoState
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 250 * time.Millisecond
	}
	if cfg.BatchLines <= 0 {
		cfg.BatchLines = 1000
	}
	if cfg.Source == "" {
		cfg.Source = "file:" + cfg.Path
	}
	decode, err := decoder(cfg.Format)
	if err != nil {
		return err
	}
	f := &follower{cfg: cfg, h: h, decode: decode}
	if err := f.loadState(); err != nil {
		return err
	}
	return f.run(ctx)
}

func decoder(format string) (func([]byte) ([]*audit.Event, error), error) {
	switch format {
	case "", "audit":
		return func(b []byte) ([]*audit.Event, error) {
			ev, err := audit.DecodeEvent(b)
			if err != nil {
				return nil, err
			}
			return []*audit.Event{ev}, nil
		}, nil
	case "aks":
		return envelope.DecodeAKS, nil
	case "gke":
		return func(b []byte) ([]*audit.Event, error) {
			ev, err := envelope.DecodeGKE(b)
			if err != nil {
				return nil, err
			}
			return []*audit.Event{ev}, nil
		}, nil
	}
	return nil, fmt.Errorf("logfile: unknown format %q (want audit, aks or gke)", format)
}

type follower struct {
	cfg    Config
	h      Handler
	decode func([]byte) ([]*audit.Event, error)
	state  State
	file   *os.File
	rd     *bufio.Reader
}

func (f *follower) loadState() error {
	data, err := os.ReadFile(f.cfg.StatePath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("logfile: state: %w", err)
	}
	if err := json.Unmarshal(data, &f.state); err != nil {
		return fmt.Errorf("logfile: state %s: %w", f.cfg.StatePath, err)
	}
	return nil
}

func (f *follower) saveState() error {
	b, _ := json.Marshal(f.state)
	if err := detect.WriteFileAtomic(f.cfg.StatePath, b); err != nil {
		return fmt.Errorf("logfile: save state: %w", err)
	}
	return nil
}

func identity(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), st.Ino
	}
	return 0, 0
}

// open opens the file to read: where the state says, when the state names
// this file; else, when the state names a rotated file still beside it,
// that file first; else the current file from its start.
func (f *follower) open() error {
	fh, err := os.Open(f.cfg.Path)
	if err != nil {
		return err
	}
	fi, err := fh.Stat()
	if err != nil {
		fh.Close()
		return err
	}
	dev, ino := identity(fi)
	if f.state.Inode != 0 && (dev != f.state.Dev || ino != f.state.Inode) {
		// The file we were reading was rotated while we were away: finish it.
		if old := f.findRotated(); old != nil {
			fh.Close()
			f.file, f.rd = old, bufio.NewReaderSize(old, audit.MaxEventBytes+1)
			if _, err := old.Seek(f.state.Offset, io.SeekStart); err != nil {
				return err
			}
			return nil
		}
		f.state = State{}
	}
	f.state.Dev, f.state.Inode = dev, ino
	if f.state.Offset > fi.Size() {
		f.state.Offset = 0 // truncated
	}
	if _, err := fh.Seek(f.state.Offset, io.SeekStart); err != nil {
		fh.Close()
		return err
	}
	f.file, f.rd = fh, bufio.NewReaderSize(fh, audit.MaxEventBytes+1)
	return nil
}

func (f *follower) findRotated() *os.File {
	matches, _ := filepath.Glob(f.cfg.Path + "*")
	more, _ := filepath.Glob(filepath.Join(filepath.Dir(f.cfg.Path), "*"+filepath.Ext(f.cfg.Path)+"*"))
	for _, m := range append(matches, more...) {
		if m == f.cfg.Path {
			continue
		}
		fi, err := os.Stat(m)
		if err != nil {
			continue
		}
		if dev, ino := identity(fi); dev == f.state.Dev && ino == f.state.Inode {
			if fh, err := os.Open(m); err == nil {
				return fh
			}
		}
	}
	return nil
}

func (f *follower) run(ctx context.Context) error {
	defer func() {
		if f.file != nil {
			f.file.Close()
		}
	}()
	tick := time.NewTicker(f.cfg.Poll)
	defer tick.Stop()
	for {
		if f.file == nil {
			if err := f.open(); err != nil {
				if !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("logfile: %w", err)
				}
				if f.cfg.Once {
					return fmt.Errorf("logfile: %w", err)
				}
			}
		}
		if f.file != nil {
			n, err := f.readBatch(ctx)
			if err != nil {
				return err
			}
			if n > 0 {
				continue // more may be waiting
			}
			if f.cfg.Once {
				return nil
			}
			// At the end: has the path moved to a new file?
			if rotated, err := f.rotated(); err == nil && rotated {
				f.file.Close()
				f.file = nil
				f.state = State{}
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// rotated reports whether the path now names another file (or a shorter one).
func (f *follower) rotated() (bool, error) {
	fi, err := os.Stat(f.cfg.Path)
	if err != nil {
		return false, err
	}
	dev, ino := identity(fi)
	cur, _ := f.file.Stat()
	cdev, cino := identity(cur)
	if dev != cdev || ino != cino {
		return true, nil
	}
	if fi.Size() < f.state.Offset {
		f.state.Offset = 0
		_, err := f.file.Seek(0, io.SeekStart)
		f.rd.Reset(f.file)
		return false, err
	}
	return false, nil
}

// readBatch reads up to BatchLines complete lines, hands their events over
// and saves the position. It returns the lines consumed.
func (f *follower) readBatch(ctx context.Context) (int, error) {
	var events []*audit.Event
	lines, bad, long := 0, 0, 0
	offset := f.state.Offset
	skipping := false
	for lines < f.cfg.BatchLines {
		line, err := f.rd.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: skip it to its end.
			offset += int64(len(line))
			skipping = true
			continue
		}
		if err != nil { // io.EOF: a partial line stays for later
			if len(line) > 0 {
				if _, serr := f.file.Seek(offset, io.SeekStart); serr != nil {
					return 0, serr
				}
				f.rd.Reset(f.file)
			}
			break
		}
		offset += int64(len(line))
		lines++
		if skipping {
			skipping = false
			long++
			continue
		}
		if len(line) <= 1 {
			continue
		}
		evs, derr := f.decode(line)
		if derr != nil {
			bad++
			slog.Debug("audit log line skipped", "source", f.cfg.Source, "err", derr)
			continue
		}
		events = append(events, evs...)
	}
	if lines == 0 {
		return 0, nil
	}
	if len(events) > 0 {
		// A sink that failed is logged and counted by the pipeline; the
		// follower goes on (a file cannot be asked to send again).
		if err := f.h.Handle(ctx, f.cfg.Source, events); err != nil && !errors.Is(err, audit.ErrDelivery) {
			return 0, err
		}
	}
	if bad > 0 {
		f.h.Rejected(ctx, f.cfg.Source, "malformed", bad)
	}
	if long > 0 {
		f.h.Rejected(ctx, f.cfg.Source, "oversized", long)
	}
	f.state.Offset = offset
	return lines, f.saveState()
}
