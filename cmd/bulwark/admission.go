package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/bulwark-sec/bulwark/admission"
)

func newAdmissionCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "admission", Short: "The validating admission webhook: serve it, or write its ValidatingWebhookConfiguration"}
	cmd.AddCommand(newAdmissionServeCmd(), newAdmissionInstallCmd())
	return cmd
}

func newAdmissionServeCmd() *cobra.Command {
	var listen, certFile, keyFile, configFile string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the webhook over TLS at /validate (certificates reloaded when their files change)",
		Long: `Serve the validating webhook (AdmissionReview v1) at https://LISTEN/validate,
with /healthz and /metrics. --config is YAML: policies (checks: ID patterns,
mode: deny|warn|audit|off; default: PSS baseline,
privileged, CAP_SYS_ADMIN and host PID/IPC denied), defaultMode (warn), exemptions (namespaces, default
[kube-system]; images; users; groups; labels), budget (2s), failurePolicy
(ignore = admit when the budget runs out or the object cannot be evaluated;
fail = deny), checks (parameters of the built-in checks), userChecks (CEL files).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg admission.Config
			if configFile != "" {
				b, err := os.ReadFile(configFile)
				if err != nil {
					return err
				}
				if cfg, err = admission.LoadConfig(b); err != nil {
					return err
				}
			}
			engine, err := admission.NewEngine(cfg)
			if err != nil {
				return err
			}
			reg := prometheus.NewRegistry()
			h, err := admission.New(cfg, engine, reg, slog.Default())
			if err != nil {
				return err
			}
			return admission.Serve(cmd.Context(), admission.ServeConfig{
				Addr: listen, CertFile: certFile, KeyFile: keyFile,
				Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
				Ready: func(a net.Addr) {
					slog.Info("admission webhook serving", "addr", a.String(), "checks", len(engine.Checks()))
				},
			}, h)
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", ":8443", "address to serve on")
	f.StringVar(&certFile, "tls-cert", "", "serving certificate (PEM); reloaded when it changes")
	f.StringVar(&keyFile, "tls-key", "", "serving key (PEM)")
	f.StringVar(&configFile, "config", "", "webhook configuration (YAML)")
	cmd.MarkFlagRequired("tls-cert")
	cmd.MarkFlagRequired("tls-key")
	return cmd
}

func newAdmissionInstallCmd() *cobra.Command {
	var o admission.InstallOptions
	var caFile, output string
	var exempt []string
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Write the ValidatingWebhookConfiguration (YAML) for kubectl apply",
		Long: `Write the ValidatingWebhookConfiguration that sends creates and updates of
workloads, services, ingresses, service accounts and RBAC objects to the
webhook. failurePolicy Ignore (default) keeps the cluster working when the
webhook is down; Fail blocks those requests instead. kube-system is not sent.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if caFile != "" {
				b, err := os.ReadFile(caFile)
				if err != nil {
					return err
				}
				o.CABundle = b
			}
			if cmd.Flags().Changed("exempt-namespace") {
				o.ExemptNamespaces = exempt
			}
			cfg, err := admission.WebhookConfiguration(o)
			if err != nil {
				return err
			}
			b, err := yaml.Marshal(cfg)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if output != "" {
				return os.WriteFile(output, b, 0o644)
			}
			_, err = fmt.Fprint(w, string(b))
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Name, "name", "bulwark", "configuration name")
	f.StringVar(&o.URL, "url", "", "webhook URL (instead of --service)")
	f.StringVar(&o.Service, "service", "bulwark-admission", "webhook Service name")
	f.StringVar(&o.Namespace, "namespace", "bulwark", "webhook Service namespace")
	f.StringVar(&caFile, "ca-file", "", "CA bundle (PEM) that signed the webhook's certificate")
	f.StringVar(&o.FailurePolicy, "failure-policy", "Ignore", "apiserver failure policy: Ignore (fail open) or Fail (fail closed)")
	f.Int32Var(&o.TimeoutSeconds, "timeout", 5, "apiserver timeout for one call, seconds (1-30)")
	f.StringArrayVar(&exempt, "exempt-namespace", nil, "namespace never sent to the webhook (repeatable; default kube-system)")
	f.StringVarP(&output, "output", "o", "", "write to this file instead of stdout")
	return cmd
}
