package central

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/bulwark-sec/bulwark/store/sqlstore"
)

// RunConfig is what Run needs to bring central up on its own.
type RunConfig struct {
	// Listen is the TCP address to serve on, e.g. "127.0.0.1:8080".
	Listen string
	// Database is a store DSN for sqlstore.Open: a SQLite file path or a
	// postgres:// URL.
	Database string
	Logger   *slog.Logger
	// Ready, when set, receives the listening address once the server accepts.
	Ready func(addr net.Addr)
}

// Run opens the store (applying migrations), listens, and serves until ctx
// ends, then shuts down gracefully and closes the store.
func Run(ctx context.Context, cfg RunConfig) error {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	st, err := sqlstore.Open(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer st.Close()
	srv, err := New(Config{Store: st, StoreKind: st.Dialect(), Logger: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr())
	}
	return srv.Serve(ctx, ln)
}
