package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/bulwark-sec/bulwark/advisory"
)

// defaultDBDir is $BULWARK_DB_DIR, else <data dir>/vulndb.
func defaultDBDir() string {
	if d := os.Getenv("BULWARK_DB_DIR"); d != "" {
		return d
	}
	return filepath.Join(defaultDataDir(), "vulndb")
}

func newDBCmd() *cobra.Command {
	var dbDir, output string
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Manage the local vulnerability database (OSV advisories)",
		Long: `Manage the local vulnerability database: OSV advisories from osv.dev's
per-ecosystem exports (or a mirror, or files), kept in one index file that
scans open in milliseconds. Updates replace the index atomically.`,
	}
	cmd.PersistentFlags().StringVar(&dbDir, "db-dir", defaultDBDir(), "database directory (env BULWARK_DB_DIR; default <data dir>/vulndb)")
	cmd.PersistentFlags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.AddCommand(newDBUpdateCmd(&dbDir, &output), newDBImportCmd(&dbDir, &output), newDBStatusCmd(&dbDir, &output))
	return cmd
}

func newDBUpdateCmd(dbDir, output *string) *cobra.Command {
	var baseURL string
	var ecosystems []string
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Download osv.dev's exports of the ecosystems asked for and update the index",
		Long: `Download <base-url>/<Ecosystem>/all.zip for each ecosystem (default: those the
index holds, else the ecosystems of container images), resuming partial
downloads, skipping unchanged ones, verifying size and checksums, and
import them into the index in one atomic step.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(*output); err != nil {
				return err
			}
			p := newProgress(cmd.ErrOrStderr())
			res, err := advisory.Update(cmd.Context(), advisory.UpdateConfig{
				Dir: *dbDir, BaseURL: baseURL, Ecosystems: ecosystems, Progress: p.report,
			})
			p.done()
			if err != nil {
				return err
			}
			if *output == "json" {
				return writeJSONOut(cmd.OutOrStdout(), res)
			}
			w := cmd.OutOrStdout()
			for _, d := range res.Downloads {
				state := "downloaded"
				switch {
				case d.Unchanged:
					state = "unchanged"
				case d.Resumed:
					state = "resumed"
				}
				fmt.Fprintf(w, "%-12s %-10s %10d bytes  verified: %s\n", d.Ecosystem, state, d.Bytes, strings.Join(d.Verified, ","))
			}
			if res.Import != nil {
				printImport(w, res.Import)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&baseURL, "base-url", envOr("BULWARK_OSV_URL", advisory.DefaultBaseURL), "where the exports are: osv.dev's bucket or a mirror with the same <Ecosystem>/all.zip layout (env BULWARK_OSV_URL)")
	cmd.Flags().StringSliceVarP(&ecosystems, "ecosystem", "e", nil, "ecosystems to download, e.g. -e Debian -e Go (default: those in the index, else the usual container ecosystems)")
	return cmd
}

func newDBImportCmd(dbDir, output *string) *cobra.Command {
	var ecosystem string
	cmd := &cobra.Command{
		Use:   "import PATH...",
		Short: "Import OSV records from zips or folders into the index, offline",
		Long: `Import OSV records from osv.dev exports (<Ecosystem>/all.zip) or folders of
OSV JSON files (searched recursively). The records of every ecosystem the
sources hold replace the index's older records of that ecosystem; other
ecosystems are kept. Files that are not OSV records are skipped and listed.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(*output); err != nil {
				return err
			}
			var sources []advisory.Source
			for _, a := range args {
				sources = append(sources, advisory.Source{Path: a, Ecosystem: ecosystem})
			}
			p := newProgress(cmd.ErrOrStderr())
			res, err := advisory.Import(cmd.Context(), advisory.ImportConfig{Dir: *dbDir, Sources: sources, Progress: p.report})
			p.done()
			if err != nil {
				return err
			}
			if *output == "json" {
				return writeJSONOut(cmd.OutOrStdout(), res)
			}
			printImport(cmd.OutOrStdout(), res)
			return nil
		},
	}
	cmd.Flags().StringVar(&ecosystem, "ecosystem", "", "the sources are the whole export of this ecosystem: drop its older records even if the sources hold none")
	return cmd
}

func newDBStatusCmd(dbDir, output *string) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show what the index holds",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(*output); err != nil {
				return err
			}
			db, err := advisory.Open(*dbDir)
			if err != nil {
				return err
			}
			defer db.Close()
			m := db.Meta()
			if *output == "json" {
				return writeJSONOut(cmd.OutOrStdout(), struct {
					Index string `json:"index"`
					advisory.Meta
				}{advisory.IndexPath(*dbDir), m})
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "index %s: %d records, %d packages, built %s\n", advisory.IndexPath(*dbDir), m.Records, m.Packages, m.Built.Format("2006-01-02 15:04:05Z"))
			names := make([]string, 0, len(m.Ecosystems))
			for e := range m.Ecosystems {
				names = append(names, e)
			}
			sort.Strings(names)
			for _, e := range names {
				em := m.Ecosystems[e]
				fmt.Fprintf(w, "  %-14s %7d records  %s  %s\n", e, em.Records, em.Imported.Format("2006-01-02 15:04Z"), em.Source)
			}
			return nil
		},
	}
}

func printImport(w io.Writer, r *advisory.ImportResult) {
	for _, e := range r.Ecosystems {
		fmt.Fprintf(w, "%-14s %7d records (%d withdrawn)  from %s\n", e.Ecosystem, e.Records, e.Withdrawn, e.Source)
	}
	fmt.Fprintf(w, "index %s: %d records, %d packages (%d kept from before), %d files skipped, in %s\n",
		r.Index, r.Records, r.Packages, r.Kept, len(r.Skipped), r.Duration.Round(1e6))
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "  skipped %s: %s\n", s.Origin, s.Err)
	}
}

func checkOutput(o string) error {
	if o != "text" && o != "json" {
		return fmt.Errorf("--output %q: want text or json", o)
	}
	return nil
}

func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// progress writes one updating line to stderr on a terminal, and a line
// per stage change otherwise.
type progress struct {
	mu   sync.Mutex
	w    io.Writer
	tty  bool
	last string
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
	return p
}

func (p *progress) report(stage, source string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	unit := "records"
	if stage == "download" {
		unit = "bytes"
	}
	line := fmt.Sprintf("%s %s: %d %s", stage, source, n, unit)
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.last = line
		return
	}
	fmt.Fprintln(p.w, line)
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.last != "" {
		fmt.Fprintln(p.w)
	}
}
