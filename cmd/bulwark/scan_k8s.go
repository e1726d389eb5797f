package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/bulwark-sec/bulwark/check"
	"github.com/bulwark-sec/bulwark/check/k8sscan"
	"github.com/bulwark-sec/bulwark/check/report"
	"github.com/bulwark-sec/bulwark/severity"
)

// newScanCmd is the parent of the CLI scanners. Other scanners (image, fs)
// add their subcommands here.
func newScanCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use: "scan", Short: "Scan manifests, clusters and images without a server",
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return fmt.Errorf("unknown command %q for %q: give a scanner (%s)", strings.Join(args, " "), cmd.CommandPath(), strings.Join(scanners(cmd), ", "))
		},
	}
	cmd.AddCommand(newScanK8sCmd())
	return cmd
}

// findingsError makes the process exit with a chosen code when results
// reach the --fail-on severity.
type findingsError struct {
	n, code int
	min     severity.Level
}

func (e findingsError) Error() string {
	return fmt.Sprintf("%d results at or above %s", e.n, e.min)
}
func (e findingsError) ExitCode() int { return e.code }

func newScanK8sCmd() *cobra.Command {
	var (
		files                        []string
		kubeconfig, kcontext, ns     string
		format, output, configFile   string
		userChecks, disabled         []string
		failOn, pssLevel, pssVersion string
		exitCode                     int
	)
	cmd := &cobra.Command{
		Use:   "k8s (-f PATH|- ... | --kubeconfig FILE [--context NAME])",
		Short: "Assess Kubernetes manifests or a live cluster against the hardening checks",
		Long: `Assess Kubernetes objects against every built-in check (Pod Security Standards,
defender data-plane recommendations, CIS Kubernetes section 5, exposure) and your
CEL checks (--checks). Input: manifest files or directories (-f, multi-document
YAML, JSON, List, helm template output; "-" is stdin), or a live cluster
(--kubeconfig/--context, or the in-cluster/default kubeconfig when no -f).
Exit code: --exit-code (default 1) when a result is at or above --fail-on
(default high; "none" never fails); 1 on errors.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			min := severity.Unknown
			if failOn != "none" {
				l, err := severity.Parse(failOn)
				if err != nil {
					return fmt.Errorf("--fail-on: %w", err)
				}
				min = l
			}
			cfg := check.Config{}
			if configFile != "" {
				c, err := check.LoadConfig(configFile)
				if err != nil {
					return err
				}
				cfg = c
			}
			if pssLevel != "" {
				cfg.PSSLevel = pssLevel
			}
			if pssVersion != "" {
				cfg.PSSVersion = pssVersion
			}
			cfg.Disabled = append(cfg.Disabled, disabled...)
			opts := k8sscan.Options{Files: files, Stdin: cmd.InOrStdin(), Namespace: ns, Config: cfg, UserChecks: userChecks}
			if len(files) == 0 {
				rules := clientcmd.NewDefaultClientConfigLoadingRules()
				if kubeconfig != "" {
					rules.ExplicitPath = kubeconfig
				}
				rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
					&clientcmd.ConfigOverrides{CurrentContext: kcontext}).ClientConfig()
				if err != nil {
					return fmt.Errorf("kubeconfig: %w", err)
				}
				if opts.Client, err = kubernetes.NewForConfig(rc); err != nil {
					return err
				}
			}
			rep, err := k8sscan.Scan(cmd.Context(), opts)
			if err != nil {
				return err
			}
			var w io.Writer = cmd.OutOrStdout()
			if output != "" {
				f, err := os.Create(output)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			if err := report.Write(w, format, rep); err != nil {
				return err
			}
			for _, e := range rep.Errors {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", e)
			}
			if min != severity.Unknown {
				if n := rep.AtLeast(min); n > 0 {
					return findingsError{n: n, code: exitCode, min: min}
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&files, "filename", "f", nil, "manifest file or directory, or - for stdin (repeatable)")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the cluster to assess live")
	f.StringVar(&kcontext, "context", "", "kubeconfig context")
	f.StringVarP(&ns, "namespace", "n", "", "only this namespace (live); default all")
	f.StringVarP(&format, "format", "o", "table", "output format: "+strings.Join(report.Formats, ", "))
	f.StringVar(&output, "output", "", "write the report to this file instead of stdout")
	f.StringVar(&configFile, "config", "", "check parameters (YAML): allowed registries, host paths, ports, capabilities, PSS level/version")
	f.StringArrayVar(&userChecks, "checks", nil, "file of CEL user checks (repeatable)")
	f.StringArrayVar(&disabled, "disable", nil, "check IDs (glob patterns) not to run (repeatable)")
	f.StringVar(&failOn, "fail-on", "high", "exit with --exit-code when a result is at or above this severity; none to never fail")
	f.IntVar(&exitCode, "exit-code", 1, "exit code when results reach --fail-on")
	f.StringVar(&pssLevel, "pss-level", "", "Pod Security Standards level: baseline or restricted (default restricted)")
	f.StringVar(&pssVersion, "pss-version", "", "Pod Security Standards version, e.g. v1.30 (default latest)")
	return cmd
}

func scanners(cmd *cobra.Command) []string {
	var out []string
	for _, c := range cmd.Commands() {
		out = append(out, c.Name())
	}
	return out
}
