package check

import (
	"fmt"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/bulwark-sec/bulwark/severity"
)

// perContainer builds an ObjectFunc that asks f about every container of a
// workload; f returns the field (relative to the container) and a message,
// or "" when the container passes.
func perContainer(f func(p *PodTemplate, c *corev1.Container, cfg *Config) (field, msg string)) ObjectFunc {
	return func(o *Object, cfg *Config) []Violation {
		if o.Pod == nil {
			return nil
		}
		var out []Violation
		for _, c := range o.Pod.containers() {
			if field, msg := f(o.Pod, c.C, cfg); msg != "" {
				out = append(out, Violation{Field: join(c.Path, field), Container: c.C.Name, Message: msg})
			}
		}
		return out
	}
}

// podLevel builds an ObjectFunc over the pod spec alone.
func podLevel(f func(p *PodTemplate, cfg *Config) []Violation) ObjectFunc {
	return func(o *Object, cfg *Config) []Violation {
		if o.Pod == nil {
			return nil
		}
		return f(o.Pod, cfg)
	}
}

func defender(control string) []Reference {
	return []Reference{{Framework: FrameworkDefender, Control: control}}
}

func sc(c *corev1.Container) *corev1.SecurityContext {
	if c.SecurityContext == nil {
		return &corev1.SecurityContext{}
	}
	return c.SecurityContext
}

// DefenderChecks are the data-plane recommendations of a managed "defender
// for containers" (Azure Policy for Kubernetes), with parameters from Config.
func DefenderChecks() []Check {
	return []Check{
		{
			ID: "def-resource-limits", Title: "Containers must have CPU and memory limits",
			Description: "Without limits one container can starve the node (and mine crypto at the cluster's expense).",
			Severity:    severity.Medium, References: defender("Container CPU and memory limits should be enforced"),
			Techniques: []Technique{tResource}, Kinds: []string{KindWorkload},
			Fix: Fix{Value: `{"cpu":"…","memory":"…"}`, Text: "set resources.limits.cpu and resources.limits.memory"},
			Object: perContainer(func(_ *PodTemplate, c *corev1.Container, _ *Config) (string, string) {
				var missing []string
				if _, ok := c.Resources.Limits[corev1.ResourceCPU]; !ok {
					missing = append(missing, "cpu")
				}
				if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
					missing = append(missing, "memory")
				}
				if len(missing) == 0 {
					return "", ""
				}
				return "resources.limits", "no " + strings.Join(missing, " and ") + " limit"
			}),
		},
		{
			ID: "def-allowed-registries", Title: "Images must come from allowed registries",
			Description: "Images from unknown registries may be malicious or unscanned.",
			Severity:    severity.High, References: defender("Container images should be deployed from trusted registries only"),
			Techniques: []Technique{tImage, tBackdoor}, Kinds: []string{KindWorkload},
			Fix: Fix{Text: "use an image from an allowed registry"},
			Object: perContainer(func(_ *PodTemplate, c *corev1.Container, cfg *Config) (string, string) {
				if len(cfg.AllowedRegistries) == 0 {
					return "", ""
				}
				img := NormalizeImage(c.Image)
				for _, r := range cfg.AllowedRegistries {
					if strings.HasPrefix(img, r) || strings.HasPrefix(c.Image, r) {
						return "", ""
					}
				}
				return "image", fmt.Sprintf("image %q is not from an allowed registry", c.Image)
			}),
		},
		{
			ID: "def-least-capabilities", Title: "Containers must add only allowed Linux capabilities",
			Description: "Each added capability widens what a compromised container can do to the node.",
			Severity:    severity.Medium, References: defender("Kubernetes cluster containers should only use allowed capabilities"),
			Techniques: []Technique{tEscapeToHost}, Kinds: []string{KindWorkload},
			Fix: Fix{Text: "remove capabilities outside the allow-list from securityContext.capabilities.add and drop ALL"},
			Object: perContainer(func(_ *PodTemplate, c *corev1.Container, cfg *Config) (string, string) {
				s := sc(c)
				if s.Capabilities == nil {
					return "", ""
				}
				var bad []string
				for _, cp := range s.Capabilities.Add {
					name := strings.TrimPrefix(strings.ToUpper(string(cp)), "CAP_")
					if !slices.Contains(cfg.AllowedCapabilities, name) && !slices.Contains(cfg.AllowedCapabilities, string(cp)) {
						bad = append(bad, string(cp))
					}
				}
				if len(bad) == 0 {
					return "", ""
				}
				return "securityContext.capabilities.add", "capabilities not allowed: " + strings.Join(bad, ", ")
			}),
		},
		{
			ID: "def-apparmor", Title: "Containers must use an allowed AppArmor profile",
			Description: "AppArmor confines what a container may do on the node.",
			Severity:    severity.Medium, References: defender("Kubernetes cluster containers should only use allowed AppArmor profiles"),
			Techniques: []Technique{tImpairDefenses}, Kinds: []string{KindWorkload},
			Fix: Fix{Value: "RuntimeDefault", Text: "set securityContext.appArmorProfile.type to RuntimeDefault"},
			Object: perContainer(func(p *PodTemplate, c *corev1.Container, cfg *Config) (string, string) {
				prof := appArmorOf(p, c)
				if prof == "" {
					return "", "" // the runtime's default profile applies
				}
				if matchAny(cfg.AllowedAppArmorProfiles, prof) {
					return "", ""
				}
				return "securityContext.appArmorProfile", fmt.Sprintf("AppArmor profile %q is not allowed", prof)
			}),
		},
		{
			ID: "def-service-ports", Title: "Services must listen only on allowed ports",
			Description: "Restricting Service ports limits what is reachable in and out of the cluster.",
			Severity:    severity.Medium, References: defender("Kubernetes cluster services should listen only on allowed ports"),
			Techniques: []Technique{tExposed}, Kinds: []string{"Service"},
			Fix: Fix{Text: "expose only allowed ports"},
			Object: func(o *Object, cfg *Config) []Violation {
				svc, ok := o.Typed.(*corev1.Service)
				if !ok || len(cfg.AllowedServicePorts) == 0 {
					return nil
				}
				var out []Violation
				for i, p := range svc.Spec.Ports {
					if !slices.Contains(cfg.AllowedServicePorts, p.Port) {
						out = append(out, Violation{Field: fmt.Sprintf("spec.ports[%d].port", i), Message: fmt.Sprintf("port %d is not allowed", p.Port)})
					}
				}
				return out
			},
		},
		{
			ID: "def-host-network-ports", Title: "Pods must not use the host network or host ports outside the allow-list",
			Description: "Host networking bypasses network policies and exposes node interfaces.",
			Severity:    severity.High, References: defender("Kubernetes cluster pods should only use approved host network and port range"),
			Techniques: []Technique{tExposed, tLateral}, Kinds: []string{KindWorkload},
			Fix: Fix{Text: "set hostNetwork to false and remove hostPort from container ports"},
			Object: func(o *Object, cfg *Config) []Violation {
				if o.Pod == nil {
					return nil
				}
				var out []Violation
				if o.Pod.Spec.HostNetwork {
					out = append(out, Violation{Field: join(o.Pod.Path, "hostNetwork"), Message: "pod uses the host network"})
				}
				for _, c := range o.Pod.containers() {
					for i, p := range c.C.Ports {
						if p.HostPort != 0 && !slices.Contains(cfg.AllowedHostPorts, p.HostPort) {
							out = append(out, Violation{Field: fmt.Sprintf("%s.ports[%d].hostPort", c.Path, i), Container: c.C.Name,
								Message: fmt.Sprintf("host port %d is not allowed", p.HostPort)})
						}
					}
				}
				return out
			},
		},
		{
			ID: "def-hostpath-allowlist", Title: "hostPath volumes must be read-only mounts of allowed paths",
			Description: "A writable or arbitrary hostPath lets a container take over the node.",
			Severity:    severity.High, References: defender("Kubernetes cluster pod hostPath volumes should only use allowed host paths"),
			Techniques: []Technique{tHostPath, tEscapeToHost}, Kinds: []string{KindWorkload},
			Fix: Fix{Text: "remove the hostPath volume, or mount an allowed path read-only"},
			Object: podLevel(func(p *PodTemplate, cfg *Config) []Violation {
				var out []Violation
				for i, v := range p.Spec.Volumes {
					if v.HostPath == nil {
						continue
					}
					if !hostPathAllowed(cfg.AllowedHostPaths, v.HostPath.Path) {
						out = append(out, Violation{Field: fmt.Sprintf("%s.volumes[%d].hostPath.path", p.Path, i),
							Message: fmt.Sprintf("hostPath %q is not allowed", v.HostPath.Path)})
						continue
					}
					for _, c := range p.containers() {
						for j, m := range c.C.VolumeMounts {
							if m.Name == v.Name && !m.ReadOnly {
								out = append(out, Violation{Field: fmt.Sprintf("%s.volumeMounts[%d].readOnly", c.Path, j), Container: c.C.Name,
									Message: fmt.Sprintf("hostPath %q is mounted writable", v.HostPath.Path)})
							}
						}
					}
				}
				return out
			}),
		},
		{
			ID: "def-no-privilege-escalation", Title: "Containers must not allow privilege escalation",
			Description: "allowPrivilegeEscalation lets a process gain more privileges than its parent (setuid binaries).",
			Severity:    severity.Medium, References: defender("Kubernetes clusters should not allow container privilege escalation"),
			Techniques: []Technique{tEscapeToHost}, Kinds: []string{KindWorkload},
			Fix: Fix{Value: "false", Text: "set securityContext.allowPrivilegeEscalation to false"},
			Object: perContainer(func(_ *PodTemplate, c *corev1.Container, _ *Config) (string, string) {
				if s := sc(c); s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation {
					return "securityContext.allowPrivilegeEscalation", "privilege escalation is not disabled"
				}
				return "", ""
			}),
		},
		{
			ID: "def-host-pid-ipc", Title: "Pods must not share the host's PID or IPC namespace",
			Description: "A shared PID or IPC namespace exposes every process of the node.",
			Severity:    severity.High, References: defender("Kubernetes cluster containers should not share host process ID or host IPC namespace"),
			Techniques: []Technique{tEscapeToHost}, Kinds: []string{KindWorkload},
			Fix: Fix{Value: "false", Text: "set hostPID and hostIPC to false"},
			Object: podLevel(func(p *PodTemplate, _ *Config) []Violation {
				var out []Violation
				if p.Spec.HostPID {
					out = append(out, Violation{Field: join(p.Path, "hostPID"), Message: "pod shares the host PID namespace"})
				}
				if p.Spec.HostIPC {
					out = append(out, Violation{Field: join(p.Path, "hostIPC"), Message: "pod shares the host IPC namespace"})
				}
				return out
			}),
		},
		{
			ID: "def-readonly-rootfs", Title: "Containers must run with a read-only root filesystem",
			Description: "A read-only root filesystem stops an attacker from dropping tools or changing binaries.",
			Severity:    severity.Low, References: defender("Kubernetes cluster containers should run with a read only root file system"),
			Techniques: []Technique{tBackdoor}, Kinds: []string{KindWorkload},
			Fix: Fix{Value: "true", Text: "set securityContext.readOnlyRootFilesystem to true"},
			Object: perContainer(func(_ *PodTemplate, c *corev1.Container, _ *Config) (string, string) {
				if s := sc(c); s.ReadOnlyRootFilesystem == nil || !*s.ReadOnlyRootFilesystem {
					return "securityContext.readOnlyRootFilesystem", "root filesystem is writable"
				}
				return "", ""
			}),
		},
		{
			ID: "def-ingress-https", Title: "Ingresses must be HTTPS only",
			Description: "Plain HTTP exposes credentials and session data on the wire.",
			Severity:    severity.Medium, References: defender("Kubernetes clusters should be accessible only over HTTPS"),
			Techniques: []Technique{tExposed}, Kinds: []string{"Ingress"},
			Fix: Fix{Field: "spec.tls", Text: "add spec.tls covering every host"},
			Object: func(o *Object, _ *Config) []Violation {
				ing, ok := o.Typed.(*networkingv1.Ingress)
				if !ok {
					return nil
				}
				if len(ing.Spec.TLS) == 0 {
					return []Violation{{Field: "spec.tls", Message: "ingress has no TLS"}}
				}
				covered := map[string]bool{}
				for _, t := range ing.Spec.TLS {
					for _, h := range t.Hosts {
						covered[h] = true
					}
				}
				var out []Violation
				for i, r := range ing.Spec.Rules {
					if r.Host != "" && !covered[r.Host] {
						out = append(out, Violation{Field: fmt.Sprintf("spec.rules[%d].host", i), Message: fmt.Sprintf("host %q is served without TLS", r.Host)})
					}
				}
				return out
			},
		},
		{
			ID: "def-automount-sa-token", Title: "Pods must not automount the service account token",
			Description: "An automounted token gives anyone in the container the pod's API rights.",
			Severity:    severity.Medium,
			References: []Reference{{FrameworkDefender, "Kubernetes clusters should disable automounting API credentials"},
				{FrameworkCIS, "5.1.6"}},
			Techniques: []Technique{tSAToken}, Kinds: []string{KindWorkload},
			Fix: Fix{Value: "false", Text: "set automountServiceAccountToken to false in the pod spec"},
			Object: podLevel(func(p *PodTemplate, _ *Config) []Violation {
				if a := p.Spec.AutomountServiceAccountToken; a == nil || *a {
					return []Violation{{Field: join(p.Path, "automountServiceAccountToken"), Message: "service account token is automounted"}}
				}
				return nil
			}),
		},
		{
			ID: "def-default-namespace", Title: "Objects must not be in the default namespace",
			Description: "The default namespace mixes unrelated workloads and is where RBAC is loosest.",
			Severity:    severity.Low,
			References:  []Reference{{FrameworkDefender, "Kubernetes clusters should not use the default namespace"}, {FrameworkCIS, "5.7.4"}},
			Techniques:  []Technique{tValidAccounts},
			Kinds:       []string{KindWorkload, "Service", "ConfigMap", "Secret", "Ingress", "ServiceAccount", "Role", "RoleBinding"},
			Fix:         Fix{Field: "metadata.namespace", Text: "put the object in its own namespace"},
			Object: func(o *Object, _ *Config) []Violation {
				if o.Ref.Namespace == "default" {
					return []Violation{{Field: "metadata.namespace", Message: "object is in the default namespace"}}
				}
				return nil
			},
		},
		{
			ID: "def-no-sys-admin", Title: "Containers must not add CAP_SYS_ADMIN",
			Description: "CAP_SYS_ADMIN is nearly root on the node: mounts, namespaces, BPF.",
			Severity:    severity.High, References: defender("Kubernetes clusters should not grant CAP_SYS_ADMIN security capabilities"),
			Techniques: []Technique{tEscapeToHost}, Kinds: []string{KindWorkload},
			Fix: Fix{Text: "remove SYS_ADMIN from securityContext.capabilities.add"},
			Object: perContainer(func(_ *PodTemplate, c *corev1.Container, _ *Config) (string, string) {
				if s := sc(c); s.Capabilities != nil {
					for i, cp := range s.Capabilities.Add {
						if n := strings.ToUpper(string(cp)); n == "SYS_ADMIN" || n == "CAP_SYS_ADMIN" {
							return fmt.Sprintf("securityContext.capabilities.add[%d]", i), "adds CAP_SYS_ADMIN"
						}
					}
				}
				return "", ""
			}),
		},
		{
			ID: "def-privileged", Title: "Containers must not run privileged",
			Description: "A privileged container has every capability and all host devices.",
			Severity:    severity.Critical, References: defender("Kubernetes cluster should not allow privileged containers"),
			Techniques: []Technique{tPrivileged, tEscapeToHost}, Kinds: []string{KindWorkload},
			Fix: Fix{Value: "false", Text: "set securityContext.privileged to false"},
			Object: perContainer(func(_ *PodTemplate, c *corev1.Container, _ *Config) (string, string) {
				if s := sc(c); s.Privileged != nil && *s.Privileged {
					return "securityContext.privileged", "container is privileged"
				}
				return "", ""
			}),
		},
		{
			ID: "def-run-as-non-root", Title: "Containers must not run as root",
			Description: "Root in a container is root on the node after any escape.",
			Severity:    severity.Medium, References: defender("Kubernetes cluster pods and containers should only run with approved user and group IDs"),
			Techniques: []Technique{tEscapeToHost}, Kinds: []string{KindWorkload},
			Fix: Fix{Value: "true", Text: "set securityContext.runAsNonRoot to true and runAsUser to a non-zero UID"},
			Object: perContainer(func(p *PodTemplate, c *corev1.Container, _ *Config) (string, string) {
				var podNonRoot *bool
				var podUser *int64
				if p.Spec.SecurityContext != nil {
					podNonRoot, podUser = p.Spec.SecurityContext.RunAsNonRoot, p.Spec.SecurityContext.RunAsUser
				}
				s := sc(c)
				nonRoot, user := s.RunAsNonRoot, s.RunAsUser
				if nonRoot == nil {
					nonRoot = podNonRoot
				}
				if user == nil {
					user = podUser
				}
				switch {
				case user != nil && *user == 0:
					return "securityContext.runAsUser", "runs as UID 0"
				case user != nil:
					return "", ""
				case nonRoot == nil || !*nonRoot:
					return "securityContext.runAsNonRoot", "may run as root (runAsNonRoot is not true)"
				}
				return "", ""
			}),
		},
	}
}

func appArmorOf(p *PodTemplate, c *corev1.Container) string {
	prof := func(a *corev1.AppArmorProfile) string {
		if a == nil {
			return ""
		}
		switch a.Type {
		case corev1.AppArmorProfileTypeRuntimeDefault:
			return "runtime/default"
		case corev1.AppArmorProfileTypeUnconfined:
			return "unconfined"
		case corev1.AppArmorProfileTypeLocalhost:
			if a.LocalhostProfile != nil {
				return "localhost/" + *a.LocalhostProfile
			}
			return "localhost/"
		}
		return string(a.Type)
	}
	if c.SecurityContext != nil {
		if s := prof(c.SecurityContext.AppArmorProfile); s != "" {
			return s
		}
	}
	if a, ok := p.Meta.Annotations[corev1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix+c.Name]; ok {
		return a
	}
	if p.Spec.SecurityContext != nil {
		return prof(p.Spec.SecurityContext.AppArmorProfile)
	}
	return ""
}

func hostPathAllowed(allowed []string, p string) bool {
	clean := path.Clean("/" + p)
	for _, a := range allowed {
		if strings.HasSuffix(a, "/") && strings.HasPrefix(clean+"/", a) {
			return true
		}
		if ok, _ := path.Match(a, clean); ok {
			return true
		}
	}
	return false
}

// NormalizeImage returns the fully qualified form of an image reference:
// "nginx" is "docker.io/library/nginx".
func NormalizeImage(img string) string {
	first, rest, found := strings.Cut(img, "/")
	if !found {
		return "docker.io/library/" + img
	}
	if !strings.ContainsAny(first, ".:") && first != "localhost" {
		return "docker.io/" + first + "/" + rest
	}
	return img
}
