package check

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// Inventory is a snapshot of many objects, indexed for checks that need
// more than one object (who is bound to what, which namespaces have a
// NetworkPolicy, which pods a Service exposes).
type Inventory struct {
	Objects []*Object
	byKind  map[string][]*Object
	roles   map[string]*rbacv1.Role // "ns/name"
	croles  map[string]*rbacv1.ClusterRole
}

// NewInventory indexes objs. The slice is kept, not copied.
func NewInventory(objs []*Object) *Inventory {
	inv := &Inventory{Objects: objs, byKind: map[string][]*Object{},
		roles: map[string]*rbacv1.Role{}, croles: map[string]*rbacv1.ClusterRole{}}
	for _, o := range objs {
		inv.byKind[o.Ref.Kind] = append(inv.byKind[o.Ref.Kind], o)
		switch x := o.Typed.(type) {
		case *rbacv1.Role:
			inv.roles[x.Namespace+"/"+x.Name] = x
		case *rbacv1.ClusterRole:
			inv.croles[x.Name] = x
		}
	}
	return inv
}

// Kind returns the objects of one kind in input order.
func (inv *Inventory) Kind(kind string) []*Object { return inv.byKind[kind] }

// Workloads returns every object with a pod template.
func (inv *Inventory) Workloads() []*Object {
	var out []*Object
	for _, o := range inv.Objects {
		if o.Pod != nil {
			out = append(out, o)
		}
	}
	return out
}

// binding is a RoleBinding or ClusterRoleBinding reduced to what RBAC
// checks need.
type binding struct {
	obj      *Object
	subjects []rbacv1.Subject
	rules    []rbacv1.PolicyRule
	roleRef  rbacv1.RoleRef
}

// bindings resolves every binding in the inventory to the rules it grants.
// A binding whose role is not in the snapshot grants nothing known.
func (inv *Inventory) bindings() []binding {
	var out []binding
	rulesOf := func(ns string, ref rbacv1.RoleRef) []rbacv1.PolicyRule {
		if ref.Kind == "ClusterRole" {
			if r := inv.croles[ref.Name]; r != nil {
				return r.Rules
			}
			return nil
		}
		if r := inv.roles[ns+"/"+ref.Name]; r != nil {
			return r.Rules
		}
		return nil
	}
	for _, o := range inv.Kind("ClusterRoleBinding") {
		if b, ok := o.Typed.(*rbacv1.ClusterRoleBinding); ok {
			out = append(out, binding{o, b.Subjects, rulesOf("", b.RoleRef), b.RoleRef})
		}
	}
	for _, o := range inv.Kind("RoleBinding") {
		if b, ok := o.Typed.(*rbacv1.RoleBinding); ok {
			out = append(out, binding{o, b.Subjects, rulesOf(b.Namespace, b.RoleRef), b.RoleRef})
		}
	}
	return out
}

// grants reports whether rules allow any of verbs on resource in group.
func grants(rules []rbacv1.PolicyRule, group, resource string, verbs ...string) bool {
	for _, r := range rules {
		if len(r.NonResourceURLs) > 0 && len(r.Resources) == 0 {
			continue
		}
		if !(slices.Contains(r.APIGroups, "*") || slices.Contains(r.APIGroups, group)) {
			continue
		}
		if !(slices.Contains(r.Resources, "*") || slices.Contains(r.Resources, resource)) {
			continue
		}
		if slices.Contains(r.Verbs, "*") {
			return true
		}
		for _, v := range verbs {
			if slices.Contains(r.Verbs, v) {
				return true
			}
		}
	}
	return false
}

// isSystem reports whether an RBAC object is one of Kubernetes' own
// defaults, which CIS does not ask to change.
func isSystem(o *Object) bool {
	if o.Meta.GetLabels()["kubernetes.io/bootstrapping"] == "rbac-defaults" {
		return true
	}
	n := o.Ref.Name
	return len(n) > 7 && n[:7] == "system:"
}

func subjectNames(ss []rbacv1.Subject) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		n := s.Kind + " " + s.Name
		if s.Namespace != "" {
			n = s.Kind + " " + s.Namespace + "/" + s.Name
		}
		out = append(out, n)
	}
	return out
}

// namespacesOf returns the namespaces the inventory knows: Namespace
// objects and the namespaces of namespaced objects.
func (inv *Inventory) namespaces() []string {
	seen := map[string]bool{}
	for _, o := range inv.Kind("Namespace") {
		if _, ok := o.Typed.(*corev1.Namespace); ok {
			seen[o.Ref.Name] = true
		}
	}
	for _, o := range inv.Objects {
		if o.Ref.Namespace != "" {
			seen[o.Ref.Namespace] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
