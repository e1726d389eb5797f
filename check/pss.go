package check

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"

	"github.com/bulwark-sec/bulwark/severity"
)

// pssMeta is what Bulwark adds to a Pod Security Admission check: words,
// severity, techniques and where the field is.
type pssMeta struct {
	title     string
	sev       severity.Level
	tech      []Technique
	podField  func(spec *corev1.PodSpec) string // relative to the pod spec; "" if none
	ctrField  func(c *corev1.Container) string  // relative to the container; "" if none
	fixValue  string
	fixText   string
	reference string // PSS control name
}

func static(s string) func(*corev1.PodSpec) string { return func(*corev1.PodSpec) string { return s } }
func cstatic(s string) func(*corev1.Container) string {
	return func(*corev1.Container) string { return s }
}

var pssMetas = map[psapolicy.CheckID]pssMeta{
	"allowPrivilegeEscalation": {"Containers must not allow privilege escalation", severity.Medium, []Technique{tEscapeToHost},
		nil, cstatic("securityContext.allowPrivilegeEscalation"), "false",
		"set securityContext.allowPrivilegeEscalation to false", "Privilege Escalation"},
	"appArmorProfile": {"AppArmor must not be disabled or overridden to unconfined", severity.Medium, []Technique{tImpairDefenses},
		static("securityContext.appArmorProfile.type"), cstatic("securityContext.appArmorProfile.type"), "RuntimeDefault",
		"set securityContext.appArmorProfile.type to RuntimeDefault or Localhost", "AppArmor"},
	"capabilities_baseline": {"Containers must not add capabilities beyond the default set", severity.High, []Technique{tEscapeToHost},
		nil, cstatic("securityContext.capabilities.add"), "[]",
		"remove the capabilities outside the default set from securityContext.capabilities.add", "Capabilities"},
	"capabilities_restricted": {"Containers must drop ALL capabilities and add only NET_BIND_SERVICE", severity.Medium, []Technique{tEscapeToHost},
		nil, cstatic("securityContext.capabilities"), `{"drop":["ALL"]}`,
		`set securityContext.capabilities.drop to ["ALL"] and add at most NET_BIND_SERVICE`, "Capabilities"},
	"hostNamespaces": {"Pods must not share the host's namespaces", severity.High, []Technique{tEscapeToHost},
		func(s *corev1.PodSpec) string {
			switch {
			case s.HostNetwork:
				return "hostNetwork"
			case s.HostPID:
				return "hostPID"
			}
			return "hostIPC"
		}, nil, "false", "set hostNetwork, hostPID and hostIPC to false", "Host Namespaces"},
	"hostPathVolumes": {"Pods must not mount hostPath volumes", severity.High, []Technique{tHostPath, tEscapeToHost},
		func(s *corev1.PodSpec) string {
			for i, v := range s.Volumes {
				if v.HostPath != nil {
					return fmt.Sprintf("volumes[%d].hostPath", i)
				}
			}
			return "volumes"
		}, nil, "", "replace the hostPath volumes with emptyDir, configMap, secret or persistentVolumeClaim volumes", "HostPath Volumes"},
	"hostPorts": {"Containers must not use host ports", severity.Medium, []Technique{tExposed},
		nil, func(c *corev1.Container) string {
			for i, p := range c.Ports {
				if p.HostPort != 0 {
					return fmt.Sprintf("ports[%d].hostPort", i)
				}
			}
			return "ports"
		}, "0", "remove hostPort from the container ports (use a Service)", "Host Ports"},
	"hostProbesAndHostLifecycle": {"Probes and lifecycle handlers must not target another host", severity.Medium, []Technique{tLateral},
		nil, func(c *corev1.Container) string {
			switch {
			case c.LivenessProbe != nil:
				return "livenessProbe"
			case c.ReadinessProbe != nil:
				return "readinessProbe"
			case c.StartupProbe != nil:
				return "startupProbe"
			}
			return "lifecycle"
		}, "", "remove the host field from httpGet and tcpSocket probes and lifecycle handlers", "Probes and Lifecycle Hooks"},
	"privileged": {"Containers must not run privileged", severity.Critical, []Technique{tPrivileged, tEscapeToHost},
		nil, cstatic("securityContext.privileged"), "false", "set securityContext.privileged to false", "Privileged Containers"},
	"procMount": {"Containers must use the default /proc mount", severity.Medium, []Technique{tEscapeToHost},
		nil, cstatic("securityContext.procMount"), "Default", "set securityContext.procMount to Default", "/proc Mount Type"},
	"procMount_restricted": {"Containers must use the default /proc mount", severity.Medium, []Technique{tEscapeToHost},
		nil, cstatic("securityContext.procMount"), "Default", "set securityContext.procMount to Default", "/proc Mount Type"},
	"restrictedVolumes": {"Pods may use only the restricted volume types", severity.Medium, []Technique{tHostPath},
		func(s *corev1.PodSpec) string { return "volumes" }, nil, "",
		"use only configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected, secret and image volumes", "Volume Types"},
	"runAsNonRoot": {"Containers must run as a non-root user", severity.Medium, []Technique{tEscapeToHost},
		static("securityContext.runAsNonRoot"), cstatic("securityContext.runAsNonRoot"), "true",
		"set securityContext.runAsNonRoot to true on the pod or every container", "Running as Non-root"},
	"runAsUser": {"Containers must not set runAsUser to 0", severity.Medium, []Technique{tEscapeToHost},
		static("securityContext.runAsUser"), cstatic("securityContext.runAsUser"), "",
		"set securityContext.runAsUser to a non-zero UID or remove it", "Running as Non-root user"},
	"seLinuxOptions": {"SELinux type must be allowed and user/role must not be set", severity.Medium, []Technique{tImpairDefenses},
		static("securityContext.seLinuxOptions"), cstatic("securityContext.seLinuxOptions"), "",
		"use type container_t, container_init_t, container_kvm_t or container_engine_t and leave user and role unset", "SELinux"},
	"seccompProfile_baseline": {"Seccomp must not be Unconfined", severity.Medium, []Technique{tImpairDefenses},
		static("securityContext.seccompProfile.type"), cstatic("securityContext.seccompProfile.type"), "RuntimeDefault",
		"set securityContext.seccompProfile.type to RuntimeDefault or Localhost", "Seccomp"},
	"seccompProfile_restricted": {"Seccomp must be RuntimeDefault or Localhost", severity.Medium, []Technique{tImpairDefenses},
		static("securityContext.seccompProfile.type"), cstatic("securityContext.seccompProfile.type"), "RuntimeDefault",
		"set securityContext.seccompProfile.type to RuntimeDefault on the pod", "Seccomp"},
	"sysctls": {"Only safe sysctls may be set", severity.Medium, []Technique{tEscapeToHost},
		static("securityContext.sysctls"), nil, "", "remove the unsafe sysctls from securityContext.sysctls", "Sysctls"},
	"windowsHostProcess": {"Windows HostProcess containers are not allowed", severity.High, []Technique{tEscapeToHost},
		static("securityContext.windowsOptions.hostProcess"), cstatic("securityContext.windowsOptions.hostProcess"), "false",
		"set securityContext.windowsOptions.hostProcess to false", "HostProcess"},
}

// PSSVersions is every version of the Pod Security Standards that
// k8s.io/pod-security-admission knows, oldest first ("v1.0" ... ).
func PSSVersions() []string {
	max := pssMaxVersion()
	var out []string
	for m := 0; m <= max.Minor(); m++ {
		out = append(out, api.MajorMinorVersion(1, m).String())
	}
	return out
}

var psaChecks = psapolicy.DefaultChecks()

func pssMaxVersion() api.Version {
	var max api.Version
	for _, c := range psaChecks {
		if v := c.Versions[len(c.Versions)-1].MinimumVersion; max.Older(v) {
			max = v
		}
	}
	return max
}

// pssSettings is the resolved PSS level and version of an engine.
type pssSettings struct {
	level      api.Level
	version    api.Version
	overridden map[psapolicy.CheckID]bool
}

func resolvePSS(level, version string) (*pssSettings, error) {
	s := &pssSettings{level: api.LevelRestricted, version: pssMaxVersion(), overridden: map[psapolicy.CheckID]bool{}}
	if level != "" {
		l, err := api.ParseLevel(level)
		if err != nil {
			return nil, fmt.Errorf("check: PSS level %q: %w", level, err)
		}
		s.level = l
	}
	if version != "" && version != "latest" {
		v, err := api.ParseVersion(version)
		if err != nil {
			return nil, fmt.Errorf("check: PSS version %q: %w", version, err)
		}
		if !s.version.Older(v) {
			s.version = v
		}
	}
	if s.level == api.LevelRestricted {
		for _, c := range psaChecks {
			if c.Level != api.LevelRestricted {
				continue
			}
			if vc := versionedAt(c, s.version); vc != nil {
				for _, id := range vc.OverrideCheckIDs {
					s.overridden[id] = true
				}
			}
		}
	}
	return s, nil
}

// versionedAt returns the revision of c in force at version v, or nil.
func versionedAt(c psapolicy.Check, v api.Version) *psapolicy.VersionedCheck {
	var found *psapolicy.VersionedCheck
	for i := range c.Versions {
		if v.Older(c.Versions[i].MinimumVersion) {
			break
		}
		found = &c.Versions[i]
	}
	return found
}

// PSSChecks returns one Check per Pod Security Standards control, baseline
// first, ordered by ID. Which revision runs, and whether it runs at all,
// follows Config.PSSLevel and Config.PSSVersion exactly as Pod Security
// Admission does at that level and version.
func PSSChecks() []Check {
	checks := slices.Clone(psaChecks)
	slices.SortFunc(checks, func(a, b psapolicy.Check) int {
		if a.Level != b.Level {
			return api.CompareLevels(a.Level, b.Level)
		}
		return strings.Compare(string(a.ID), string(b.ID))
	})
	var out []Check
	for _, pc := range checks {
		m, ok := pssMetas[pc.ID]
		if !ok {
			// A check added by a newer pod-security-admission: still run it.
			m = pssMeta{title: "Pod Security Standards: " + string(pc.ID), sev: severity.Medium,
				podField: static(""), ctrField: cstatic(""), fixText: "see the Pod Security Standards"}
		}
		framework := FrameworkPSSBaseline
		if pc.Level == api.LevelRestricted {
			framework = FrameworkPSSRestricted
		}
		out = append(out, Check{
			ID:          "pss-" + string(pc.Level) + "-" + strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(string(pc.ID), "_baseline"), "_restricted")),
			Title:       m.title,
			Description: fmt.Sprintf("Pod Security Standards %s control %q, evaluated by Kubernetes' own Pod Security Admission code.", pc.Level, m.reference),
			Severity:    m.sev,
			References:  []Reference{{Framework: framework, Control: m.reference}},
			Techniques:  m.tech,
			Fix:         Fix{Value: m.fixValue, Text: m.fixText},
			Kinds:       []string{KindWorkload},
			Object:      pssObjectFunc(pc, m),
		})
	}
	return out
}

func pssObjectFunc(pc psapolicy.Check, m pssMeta) ObjectFunc {
	return func(o *Object, cfg *Config) []Violation {
		s := cfg.pss
		if s == nil || o.Pod == nil || api.CompareLevels(pc.Level, s.level) > 0 || s.overridden[pc.ID] {
			return nil
		}
		vc := versionedAt(pc, s.version)
		if vc == nil {
			return nil
		}
		return pssViolations(vc.CheckPod, o.Pod, m)
	}
}

// pssViolations runs fn on the pod and, when it fails, on the pod reduced
// to each single container and to no container, to say which containers
// and which pod-level fields are at fault. The verdict is fn's own.
func pssViolations(fn psapolicy.CheckPodFn, p *PodTemplate, m pssMeta) []Violation {
	res := fn(p.Meta, p.Spec)
	if res.Allowed {
		return nil
	}
	reason := res.ForbiddenReason
	if reason == "" {
		reason = psapolicy.UnknownForbiddenReason
	}
	var out []Violation
	bare := *p.Spec
	bare.InitContainers, bare.Containers, bare.EphemeralContainers = nil, nil, nil
	if r := fn(p.Meta, &bare); !r.Allowed && m.podField != nil {
		out = append(out, Violation{Field: join(p.Path, m.podField(p.Spec)), Message: pssMessage(r)})
	}
	if m.ctrField != nil {
		one := bare
		for _, c := range p.containers() {
			one.InitContainers, one.Containers, one.EphemeralContainers = nil, nil, nil
			switch {
			case strings.Contains(c.Path, ".initContainers["):
				one.InitContainers = []corev1.Container{*c.C}
			case strings.Contains(c.Path, ".ephemeralContainers["):
				one.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon(*c.C)}}
			default:
				one.Containers = []corev1.Container{*c.C}
			}
			if r := fn(p.Meta, &one); !r.Allowed {
				out = append(out, Violation{Field: join(c.Path, m.ctrField(c.C)), Container: c.C.Name, Message: pssMessage(r)})
			}
		}
	}
	if len(out) == 0 {
		out = append(out, Violation{Field: p.Path, Message: pssMessage(res)})
	}
	return out
}

func pssMessage(r psapolicy.CheckResult) string {
	if r.ForbiddenDetail == "" {
		return r.ForbiddenReason
	}
	return r.ForbiddenReason + " (" + r.ForbiddenDetail + ")"
}

func join(a, b string) string {
	switch {
	case b == "":
		return a
	case a == "":
		return b
	}
	return a + "." + b
}
