package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/spf13/cobra"

	"github.com/bulwark-sec/bulwark/audit"
	"github.com/bulwark-sec/bulwark/audit/service"
	"github.com/bulwark-sec/bulwark/detect"
	"github.com/bulwark-sec/bulwark/store/sqlstore"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Threat detection from Kubernetes audit logs",
	}
	cmd.AddCommand(newAuditServeCmd(), newAuditReplayCmd(), newAuditRulesCmd())
	return cmd
}

// listFlags parses repeated --list NAME=FILE.
func listFlags(lists []string) (map[string]string, error) {
	out := map[string]string{}
	for _, l := range lists {
		name, file, ok := strings.Cut(l, "=")
		if !ok || name == "" || file == "" {
			return nil, fmt.Errorf("--list %q: want NAME=FILE", l)
		}
		out[name] = file
	}
	return out, nil
}

func newAuditServeCmd() *cobra.Command {
	var configPath, database string
	var jsonLines bool
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Receive audit events (webhook, log files, CloudWatch Logs) and raise alerts",
		Long: `Receive Kubernetes audit events from the sources the configuration names and
evaluate the built-in and user rules on them. Alerts are printed as JSON lines
(--json or jsonLines: true) and/or stored in the database (--database).
Prometheus metrics (events, lag, rejected batches, alerts) are served on the
configuration's metrics address. Stop with Ctrl-C or SIGTERM: accepted events
are evaluated, positions and baselines saved.

Example configuration:

  cluster: prod
  stateDir: /var/lib/bulwark/audit
  jsonLines: true
  metrics: ":9090"
  rules: [/etc/bulwark/rules]
  lists: {tor-exit-nodes: /etc/bulwark/tor-exits.txt}
  webhook: {listen: ":8443", certFile: tls.crt, keyFile: tls.key, clientCAFile: apiserver-ca.crt}
  files: [{path: /var/log/kubernetes/audit.log}]
  cloudwatch: [{logGroup: /aws/eks/prod/cluster, region: eu-west-1}]`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := service.LoadConfig(configPath)
			if err != nil {
				return err
			}
			if jsonLines {
				cfg.JSONLines = true
			}
			deps := service.Deps{Stdout: cmd.OutOrStdout(), Logger: slog.Default()}
			if database != "" {
				st, err := sqlstore.Open(cmd.Context(), database)
				if err != nil {
					return err
				}
				defer st.Close()
				deps.Store = st
			}
			if len(cfg.CloudWatch) > 0 {
				awsCfg, err := awsconfig.LoadDefaultConfig(cmd.Context())
				if err != nil {
					return fmt.Errorf("aws configuration: %w", err)
				}
				deps.AWS = &awsCfg
			}
			return service.Run(cmd.Context(), cfg, deps)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "configuration file (YAML)")
	cmd.Flags().StringVar(&database, "database", os.Getenv("BULWARK_DATABASE"), "store alerts here: a SQLite file or postgres:// URL (env BULWARK_DATABASE)")
	cmd.Flags().BoolVar(&jsonLines, "json", false, "print alerts as JSON lines on stdout")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func newAuditReplayCmd() *cobra.Command {
	var format, inputFormat, cluster string
	var rules, lists []string
	var noBuiltin, noFold bool
	cmd := &cobra.Command{
		Use:   "replay FILE",
		Short: "Evaluate a saved audit log and print the alerts (forensics, trying rules)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			lm, err := listFlags(lists)
			if err != nil {
				return err
			}
			if format != "table" && format != "json" {
				return fmt.Errorf("--format %q: want table or json", format)
			}
			res, err := service.Replay(cmd.Context(), service.ReplayConfig{
				Path: args[0], Format: inputFormat, NoFold: noFold,
				Rules: audit.RulesConfig{Files: rules, NoBuiltin: noBuiltin, Lists: lm, Cluster: cluster},
			})
			if err != nil {
				return err
			}
			if format == "json" {
				return service.WriteJSON(cmd.OutOrStdout(), res)
			}
			return service.WriteTable(cmd.OutOrStdout(), res)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "output: table or json")
	cmd.Flags().StringVar(&inputFormat, "input-format", "audit", "lines are: audit (apiserver JSON log), aks (diagnostic records), gke (Cloud Logging entries)")
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster name for the alerts")
	cmd.Flags().StringArrayVar(&rules, "rules", nil, "rule file or directory (repeatable)")
	cmd.Flags().StringArrayVar(&lists, "list", nil, "NAME=FILE: a list for the rules, e.g. tor-exit-nodes=exits.txt (repeatable)")
	cmd.Flags().BoolVar(&noBuiltin, "no-builtin", false, "only the rules given with --rules")
	cmd.Flags().BoolVar(&noFold, "no-fold", false, "one alert per matching event instead of folding repeats")
	return cmd
}

func newAuditRulesCmd() *cobra.Command {
	var format string
	var rules []string
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "List the audit rules (built-in and --rules files); a rule file that does not compile is refused",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, _, err := audit.NewEngine(audit.RulesConfig{Files: rules})
			if err != nil {
				return err
			}
			infos := e.Rules()
			sort.Slice(infos, func(i, j int) bool { return infos[i].ID < infos[j].ID })
			return writeRules(cmd.OutOrStdout(), format, infos)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "output: table or json")
	cmd.Flags().StringArrayVar(&rules, "rules", nil, "rule file or directory (repeatable)")
	return cmd
}

func writeRules(w io.Writer, format string, infos []detect.RuleInfo) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(infos)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSEVERITY\tTACTIC\tTECHNIQUE\tMS MATRIX\tENABLED\tTITLE")
	for _, r := range infos {
		enabled := fmt.Sprint(r.Enabled)
		if r.Enabled && r.Inactive != "" {
			enabled = "inactive (" + r.Inactive + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Severity, r.Tactic, r.Technique, r.MSMatrix, enabled, r.Title)
	}
	return tw.Flush()
}
