package check

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/bulwark-sec/bulwark/severity"
)

func cis(control string) []Reference { return []Reference{{Framework: FrameworkCIS, Control: control}} }

// CISChecks are CIS Kubernetes Benchmark section 5 as object and inventory
// checks, and the control-plane flags of sections 1 and 2 read from static
// pods in kube-system where the cluster shows them.
func CISChecks() []Check {
	checks := []Check{
		{
			ID: "cis-5.1.1-cluster-admin", Title: "cluster-admin must be bound only where required",
			Description: "The cluster-admin role gives every right on every object.",
			Severity:    severity.High, References: cis("5.1.1"), Techniques: []Technique{tClusterAdmin},
			Kinds: []string{"ClusterRoleBinding", "RoleBinding"},
			Fix:   Fix{Field: "roleRef.name", Text: "bind a role with only the rights needed instead of cluster-admin"},
			Object: func(o *Object, _ *Config) []Violation {
				var ref rbacv1.RoleRef
				var subjects []rbacv1.Subject
				switch b := o.Typed.(type) {
				case *rbacv1.ClusterRoleBinding:
					ref, subjects = b.RoleRef, b.Subjects
				case *rbacv1.RoleBinding:
					ref, subjects = b.RoleRef, b.Subjects
				}
				if ref.Kind != "ClusterRole" || ref.Name != "cluster-admin" {
					return nil
				}
				var who []rbacv1.Subject
				for _, s := range subjects {
					if !(s.Kind == rbacv1.GroupKind && s.Name == "system:masters") {
						who = append(who, s)
					}
				}
				if len(who) == 0 {
					return nil
				}
				return []Violation{{Field: "roleRef.name", Message: "cluster-admin is bound to " + strings.Join(subjectNames(who), ", ")}}
			},
		},
		rbacInventoryCheck("cis-5.1.2-secrets-access", "5.1.2", "Access to secrets must be minimised",
			"Reading secrets gives the credentials of every workload.", severity.High, tSecrets,
			"", "secrets", []string{"get", "list", "watch"}, "can read secrets"),
		{
			ID: "cis-5.1.3-wildcards", Title: "Roles must not use wildcards",
			Description: "A wildcard grants rights on resources and verbs added in the future.",
			Severity:    severity.Medium, References: cis("5.1.3"), Techniques: []Technique{tValidAccounts},
			Kinds: []string{"Role", "ClusterRole"},
			Fix:   Fix{Text: "list the API groups, resources and verbs explicitly"},
			Object: func(o *Object, _ *Config) []Violation {
				if isSystem(o) || o.Ref.Name == "cluster-admin" || o.Ref.Name == "admin" || o.Ref.Name == "edit" {
					return nil
				}
				var rules []rbacv1.PolicyRule
				switch r := o.Typed.(type) {
				case *rbacv1.Role:
					rules = r.Rules
				case *rbacv1.ClusterRole:
					rules = r.Rules
				}
				var out []Violation
				for i, r := range rules {
					for _, f := range []struct {
						name string
						vals []string
					}{{"apiGroups", r.APIGroups}, {"resources", r.Resources}, {"verbs", r.Verbs}} {
						if slices.Contains(f.vals, "*") {
							out = append(out, Violation{Field: fmt.Sprintf("rules[%d].%s", i, f.name), Message: "wildcard in " + f.name})
						}
					}
				}
				return out
			},
		},
		rbacInventoryCheck("cis-5.1.4-create-pods", "5.1.4", "Access to create pods must be minimised",
			"Whoever can create a pod can run it privileged or with any service account in its namespace.", severity.High, tContainerAdmin,
			"", "pods", []string{"create"}, "can create pods"),
		{
			ID: "cis-5.1.5-default-sa", Title: "Default service accounts must not automount tokens",
			Description: "Every pod without a service account gets the namespace's default one.",
			Severity:    severity.Medium, References: cis("5.1.5"), Techniques: []Technique{tSAToken},
			Kinds: []string{"ServiceAccount"},
			Fix:   Fix{Field: "automountServiceAccountToken", Value: "false", Text: "set automountServiceAccountToken to false on the default service account"},
			Object: func(o *Object, _ *Config) []Violation {
				sa, ok := o.Typed.(*corev1.ServiceAccount)
				if !ok || sa.Name != "default" {
					return nil
				}
				if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
					return []Violation{{Field: "automountServiceAccountToken", Message: "default service account automounts its token"}}
				}
				return nil
			},
		},
		{
			ID: "cis-5.1.5-default-sa-bound", Title: "Default service accounts must not be granted rights",
			Description: "Rights given to a default service account go to every pod of the namespace that names none.",
			Severity:    severity.Medium, References: cis("5.1.5"), Techniques: []Technique{tSAToken},
			Fix: Fix{Field: "subjects", Text: "bind a dedicated service account instead of default"},
			Inventory: func(inv *Inventory, _ *Config) []Result {
				var out []Result
				for _, b := range inv.bindings() {
					if isSystem(b.obj) {
						continue
					}
					for i, s := range b.subjects {
						if s.Kind == rbacv1.ServiceAccountKind && s.Name == "default" {
							out = append(out, Result{Object: b.obj.Ref, Source: b.obj.Source, Field: fmt.Sprintf("subjects[%d]", i),
								Message: fmt.Sprintf("default service account of %q is bound to %s %s", s.Namespace, b.roleRef.Kind, b.roleRef.Name)})
						}
					}
				}
				return out
			},
		},
		{
			ID: "cis-5.3.2-network-policy", Title: "Every namespace must have a NetworkPolicy",
			Description: "Without a NetworkPolicy every pod can reach every other pod.",
			Severity:    severity.Medium, References: cis("5.3.2"), Techniques: []Technique{tLateral, tNetworkScan},
			Fix: Fix{Text: "add a NetworkPolicy (at least a default deny) to the namespace"},
			Inventory: func(inv *Inventory, _ *Config) []Result {
				has := map[string]bool{}
				for _, o := range inv.Kind("NetworkPolicy") {
					has[o.Ref.Namespace] = true
				}
				workloads := map[string]bool{}
				for _, o := range inv.Workloads() {
					workloads[o.Ref.Namespace] = true
				}
				var out []Result
				for _, ns := range inv.namespaces() {
					if has[ns] || !workloads[ns] || ns == "kube-system" || ns == "kube-public" || ns == "kube-node-lease" {
						continue
					}
					out = append(out, Result{Object: ObjectRef{APIVersion: "v1", Kind: "Namespace", Name: ns},
						Message: fmt.Sprintf("namespace %q runs workloads and has no NetworkPolicy", ns)})
				}
				return out
			},
		},
		{
			ID: "cis-5.4.1-secrets-in-env", Title: "Secrets must be mounted as files, not environment variables",
			Description: "Environment variables leak into logs, crash dumps and child processes.",
			Severity:    severity.Low, References: cis("5.4.1"), Techniques: []Technique{tSecrets},
			Kinds: []string{KindWorkload},
			Fix:   Fix{Text: "mount the secret as a volume instead of env/envFrom"},
			Object: func(o *Object, _ *Config) []Violation {
				if o.Pod == nil {
					return nil
				}
				var out []Violation
				for _, c := range o.Pod.containers() {
					for i, e := range c.C.Env {
						if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
							out = append(out, Violation{Field: fmt.Sprintf("%s.env[%d].valueFrom.secretKeyRef", c.Path, i), Container: c.C.Name,
								Message: fmt.Sprintf("env %s comes from secret %q", e.Name, e.ValueFrom.SecretKeyRef.Name)})
						}
					}
					for i, e := range c.C.EnvFrom {
						if e.SecretRef != nil {
							out = append(out, Violation{Field: fmt.Sprintf("%s.envFrom[%d].secretRef", c.Path, i), Container: c.C.Name,
								Message: fmt.Sprintf("environment comes from secret %q", e.SecretRef.Name)})
						}
					}
				}
				return out
			},
		},
	}
	return append(checks, controlPlaneChecks()...)
}

// rbacInventoryCheck reports bindings (not Kubernetes' own) that grant one
// of verbs on resource to someone.
func rbacInventoryCheck(id, control, title, desc string, sev severity.Level, t Technique, group, resource string, verbs []string, what string) Check {
	return Check{
		ID: id, Title: title, Description: desc, Severity: sev, References: cis(control), Techniques: []Technique{t},
		Fix: Fix{Field: "roleRef", Text: "bind a role without " + strings.Join(verbs, "/") + " on " + resource},
		Inventory: func(inv *Inventory, _ *Config) []Result {
			var out []Result
			for _, b := range inv.bindings() {
				if isSystem(b.obj) || len(b.subjects) == 0 || !grants(b.rules, group, resource, verbs...) {
					continue
				}
				out = append(out, Result{Object: b.obj.Ref, Source: b.obj.Source, Field: "roleRef",
					Message: fmt.Sprintf("%s %s through %s %s", strings.Join(subjectNames(b.subjects), ", "), what, b.roleRef.Kind, b.roleRef.Name)})
			}
			return out
		},
	}
}

// flagRule is one control-plane flag a CIS control expects.
type flagRule struct {
	id, control, component, flag, title string
	sev                                 severity.Level
	ok                                  func(val string, set bool) bool
	want                                string
}

func controlPlaneChecks() []Check {
	eq := func(v string) func(string, bool) bool {
		return func(got string, set bool) bool { return set && got == v }
	}
	rules := []flagRule{
		{"cis-1.2.1-anonymous-auth", "1.2.1", "kube-apiserver", "anonymous-auth", "The API server must not allow anonymous requests", severity.High, eq("false"), "false"},
		{"cis-1.2.6-authorization-mode", "1.2.6", "kube-apiserver", "authorization-mode", "The API server must not use AlwaysAllow authorization", severity.Critical,
			func(v string, set bool) bool {
				return set && !slices.Contains(strings.Split(v, ","), "AlwaysAllow") && slices.Contains(strings.Split(v, ","), "RBAC")
			}, "Node,RBAC"},
		{"cis-1.2.15-apiserver-profiling", "1.2.15", "kube-apiserver", "profiling", "The API server must not expose profiling", severity.Low, eq("false"), "false"},
		{"cis-1.2.16-audit-log", "1.2.16", "kube-apiserver", "audit-log-path", "The API server must write an audit log", severity.Medium,
			func(v string, set bool) bool { return set && v != "" }, "/var/log/kubernetes/audit.log"},
		{"cis-1.3.2-controller-manager-profiling", "1.3.2", "kube-controller-manager", "profiling", "The controller manager must not expose profiling", severity.Low, eq("false"), "false"},
		{"cis-1.3.3-service-account-credentials", "1.3.3", "kube-controller-manager", "use-service-account-credentials", "Controllers must use their own service account credentials", severity.Medium, eq("true"), "true"},
		{"cis-1.4.1-scheduler-profiling", "1.4.1", "kube-scheduler", "profiling", "The scheduler must not expose profiling", severity.Low, eq("false"), "false"},
		{"cis-2.2-etcd-client-cert-auth", "2.2", "etcd", "client-cert-auth", "etcd must require client certificates", severity.Critical, eq("true"), "true"},
	}
	out := make([]Check, 0, len(rules))
	for _, r := range rules {
		out = append(out, Check{
			ID: r.id, Title: r.title, Severity: r.sev, References: cis(r.control), Techniques: []Technique{tValidAccounts},
			Description: fmt.Sprintf("Read from the %s static pod in kube-system, where the cluster shows it.", r.component),
			Kinds:       []string{"Pod"},
			Fix:         Fix{Value: "--" + r.flag + "=" + r.want, Text: fmt.Sprintf("run %s with --%s=%s", r.component, r.flag, r.want)},
			Object: func(o *Object, _ *Config) []Violation {
				pod, ok := o.Typed.(*corev1.Pod)
				if !ok || pod.Namespace != "kube-system" {
					return nil
				}
				for ci, c := range pod.Spec.Containers {
					args := append(slices.Clone(c.Command), c.Args...)
					if !isComponent(pod, c, args, r.component) {
						continue
					}
					val, set := "", false
					for _, a := range args {
						if v, found := strings.CutPrefix(a, "--"+r.flag+"="); found {
							val, set = v, true
						} else if a == "--"+r.flag {
							val, set = "true", true
						}
					}
					if !r.ok(val, set) {
						msg := fmt.Sprintf("%s runs without --%s=%s", r.component, r.flag, r.want)
						if set {
							msg = fmt.Sprintf("%s runs with --%s=%s", r.component, r.flag, val)
						}
						return []Violation{{Field: fmt.Sprintf("spec.containers[%d].command", ci), Container: c.Name, Message: msg}}
					}
				}
				return nil
			},
		})
	}
	return out
}

func isComponent(pod *corev1.Pod, c corev1.Container, args []string, component string) bool {
	if pod.Labels["component"] == component {
		return true
	}
	return len(args) > 0 && (args[0] == component || strings.HasSuffix(args[0], "/"+component))
}
