package detect

import (
	"net/netip"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// list is a compiled named list: exact strings (lower-cased), IP prefixes,
// and the raw items for substring search.
type list struct {
	exact    map[string]struct{}
	prefixes []netip.Prefix
	subs     []string
}

func compileList(items []string) *list {
	l := &list{exact: make(map[string]struct{}, len(items))}
	for _, it := range items {
		it = strings.TrimSpace(it)
		if it == "" {
			continue
		}
		if p, err := netip.ParsePrefix(it); err == nil {
			l.prefixes = append(l.prefixes, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(it); err == nil {
			l.exact[a.Unmap().String()] = struct{}{}
			continue
		}
		low := strings.ToLower(it)
		l.exact[low] = struct{}{}
		l.subs = append(l.subs, low)
	}
	return l
}

// has reports whether v is an item, or an IP address inside a listed prefix.
func (l *list) has(v string) bool {
	if l == nil || v == "" || len(l.exact) == 0 && len(l.prefixes) == 0 {
		return false
	}
	if a, err := netip.ParseAddr(v); err == nil {
		a = a.Unmap()
		if _, ok := l.exact[a.String()]; ok {
			return true
		}
		for _, p := range l.prefixes {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	_, ok := l.exact[strings.ToLower(v)]
	return ok
}

// contains reports whether v contains one of the items, case-insensitively.
func (l *list) contains(v string) bool {
	if l == nil || v == "" {
		return false
	}
	v = strings.ToLower(v)
	for _, s := range l.subs {
		if strings.Contains(v, s) {
			return true
		}
	}
	return false
}

// listFuncs declares the list functions over the engine's lists:
//
//	inList(name, string) bool        the value is an item (IPs match prefixes)
//	inList(name, list(string)) bool  any value is
//	containsListed(name, string) bool the value contains an item
func listFuncs(lists map[string]*list) []cel.EnvOption {
	get := func(name ref.Val) *list { return lists[string(name.(types.String))] }
	anyOf := func(l *list, vals ref.Val, f func(*list, string) bool) ref.Val {
		if l == nil || len(l.exact) == 0 && len(l.prefixes) == 0 {
			return types.False
		}
		lister, ok := vals.(traits.Lister)
		if !ok {
			return types.False
		}
		it := lister.Iterator()
		for it.HasNext() == types.True {
			if s, ok := it.Next().(types.String); ok && f(l, string(s)) {
				return types.True
			}
		}
		return types.False
	}
	return []cel.EnvOption{
		cel.Function("inList",
			cel.Overload("inList_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
				cel.BinaryBinding(func(n, v ref.Val) ref.Val {
					s, _ := v.(types.String)
					return types.Bool(get(n).has(string(s)))
				})),
			cel.Overload("inList_string_list", []*cel.Type{cel.StringType, cel.ListType(cel.StringType)}, cel.BoolType,
				cel.BinaryBinding(func(n, v ref.Val) ref.Val { return anyOf(get(n), v, (*list).has) })),
		),
		cel.Function("containsListed",
			cel.Overload("containsListed_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
				cel.BinaryBinding(func(n, v ref.Val) ref.Val {
					s, _ := v.(types.String)
					return types.Bool(get(n).contains(string(s)))
				})),
			cel.Overload("containsListed_string_list", []*cel.Type{cel.StringType, cel.ListType(cel.StringType)}, cel.BoolType,
				cel.BinaryBinding(func(n, v ref.Val) ref.Val { return anyOf(get(n), v, (*list).contains) })),
		),
	}
}
