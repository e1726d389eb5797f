package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/bulwark-sec/bulwark/central"
)

// defaultDataDir is $BULWARK_DATA_DIR, else $XDG_DATA_HOME/bulwark, else
// ~/.local/share/bulwark.
func defaultDataDir() string {
	if d := os.Getenv("BULWARK_DATA_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "bulwark")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "bulwark")
	}
	return "bulwark-data"
}

func newUpCmd() *cobra.Command {
	var listen, dataDir, database string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run Bulwark on one machine: the central server on embedded defaults (SQLite under the data dir)",
		Long: `Run Bulwark on one machine, everything in one process, on embedded defaults:
the store is a SQLite file under the data directory, and the server listens
on 127.0.0.1:8080 with /healthz, /readyz, /metrics and the JSON API at /api/v1.
Stop it with Ctrl-C or SIGTERM; requests in flight finish first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if database == "" {
				if err := os.MkdirAll(dataDir, 0o750); err != nil {
					return fmt.Errorf("data dir: %w", err)
				}
				database = filepath.Join(dataDir, "bulwark.db")
			}
			return central.Run(cmd.Context(), central.RunConfig{
				Listen:   listen,
				Database: database,
				Logger:   slog.Default(),
				Ready: func(addr net.Addr) {
					slog.Info("bulwark is up", "url", "http://"+addr.String()+"/api/v1", "data", dataDir)
				},
			})
		},
	}
	cmd.Flags().StringVar(&listen, "listen", envOr("BULWARK_LISTEN", "127.0.0.1:8080"), "address to serve on (env BULWARK_LISTEN)")
	cmd.Flags().StringVar(&dataDir, "data-dir", defaultDataDir(), "directory for the SQLite database and local files (env BULWARK_DATA_DIR)")
	cmd.Flags().StringVar(&database, "database", os.Getenv("BULWARK_DATABASE"), "use this database instead of SQLite under --data-dir: a postgres:// URL (env BULWARK_DATABASE)")
	return cmd
}
