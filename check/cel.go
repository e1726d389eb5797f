package check

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/bulwark-sec/bulwark/severity"
)

// CELCheck is one user check as written in a file. Its fields follow a
// ValidatingAdmissionPolicy validation: Expression is true when the object
// passes; it sees object, oldObject, params and request.
type CELCheck struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	Severity    string `json:"severity"`
	// Kinds limits the check to these kinds; "*workload" means every kind
	// with a pod template. Empty: every object.
	Kinds []string `json:"kinds,omitempty"`
	// MatchCondition, when set, must be true for the check to apply.
	MatchCondition string `json:"matchCondition,omitempty"`
	// Expression must evaluate to true for the object to pass.
	Expression string `json:"expression"`
	// Message is shown on failure; MessageExpression, when set, computes it.
	Message           string         `json:"message,omitempty"`
	MessageExpression string         `json:"messageExpression,omitempty"`
	Field             string         `json:"field,omitempty"`
	Fix               string         `json:"fix,omitempty"`
	Params            map[string]any `json:"params,omitempty"`
	References        []Reference    `json:"references,omitempty"`
}

// celFile is the file format: a list of checks.
type celFile struct {
	Checks []CELCheck `json:"checks"`
}

// celCostLimit bounds one evaluation (the apiserver's per-expression
// runtime cost limit is 1,000,000 as well).
const celCostLimit = 1_000_000

// maxCELFile bounds a user check file.
const maxCELFile = 4 << 20

var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("object", cel.DynType),
		cel.Variable("oldObject", cel.DynType),
		cel.Variable("params", cel.DynType),
		cel.Variable("request", cel.DynType),
		cel.OptionalTypes(),
		ext.Strings(), ext.Lists(), ext.Sets(), ext.Encoders(), ext.Math(),
		cel.HomogeneousAggregateLiterals(),
		cel.DefaultUTCTimeZone(true),
	)
})

// LoadCEL reads user checks from files (YAML or JSON; several documents
// per file allowed, each {"checks": [...]}) and compiles them.
func LoadCEL(files ...string) ([]Check, error) {
	var out []Check
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCEL, err)
		}
		b, err := io.ReadAll(io.LimitReader(fh, maxCELFile+1))
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("%w: read %s: %w", ErrCEL, f, err)
		}
		if len(b) > maxCELFile {
			return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrCEL, f, maxCELFile)
		}
		cs, err := ParseCEL(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = append(out, cs...)
	}
	return out, nil
}

// ParseCEL compiles the user checks in one file's contents.
func ParseCEL(data []byte) ([]Check, error) {
	var out []Check
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var f celFile
		if err := dec.Decode(&f); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("%w: %w", ErrCEL, err)
		}
		for _, cc := range f.Checks {
			c, err := cc.Compile()
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
}

// Compile turns a CELCheck into a Check.
func (cc CELCheck) Compile() (Check, error) {
	env, err := celEnv()
	if err != nil {
		return Check{}, fmt.Errorf("%w: environment: %w", ErrCEL, err)
	}
	sev, err := severity.Parse(cc.Severity)
	if err != nil || sev == severity.Unknown {
		sev = severity.Medium
	}
	if cc.ID == "" || cc.Expression == "" {
		return Check{}, fmt.Errorf("%w: check %q needs id and expression", ErrCEL, cc.ID)
	}
	compile := func(what, expr string, want *cel.Type) (cel.Program, error) {
		if expr == "" {
			return nil, nil
		}
		ast, iss := env.Compile(expr)
		if iss.Err() != nil {
			return nil, fmt.Errorf("%w: %s %s: %w", ErrCEL, cc.ID, what, iss.Err())
		}
		if !ast.OutputType().IsAssignableType(want) && ast.OutputType() != cel.DynType {
			return nil, fmt.Errorf("%w: %s %s: want %s, expression gives %s", ErrCEL, cc.ID, what, want, ast.OutputType())
		}
		return env.Program(ast, cel.CostLimit(celCostLimit), cel.InterruptCheckFrequency(100))
	}
	valid, err := compile("expression", cc.Expression, cel.BoolType)
	if err != nil {
		return Check{}, err
	}
	match, err := compile("matchCondition", cc.MatchCondition, cel.BoolType)
	if err != nil {
		return Check{}, err
	}
	msgExpr, err := compile("messageExpression", cc.MessageExpression, cel.StringType)
	if err != nil {
		return Check{}, err
	}
	title := cc.Title
	if title == "" {
		title = cc.ID
	}
	refs := cc.References
	if len(refs) == 0 {
		refs = []Reference{{Framework: FrameworkUser, Control: cc.ID}}
	}
	var params any
	if cc.Params != nil {
		params = cc.Params
	}
	return Check{
		ID: cc.ID, Title: title, Description: cc.Description, Severity: sev, References: refs,
		Kinds: cc.Kinds, Fix: Fix{Field: cc.Field, Text: cc.Fix},
		Object: func(o *Object, _ *Config) []Violation {
			obj, err := o.Unstructured()
			if err != nil {
				return []Violation{{Field: cc.Field, Message: "object cannot be read: " + err.Error()}}
			}
			vars := map[string]any{"object": obj, "oldObject": nilIfEmpty(o.OldObject), "params": params, "request": nilIfEmpty(o.Request)}
			if match != nil {
				ok, err := evalBool(match, vars)
				if err != nil {
					return []Violation{{Field: cc.Field, Message: "matchCondition: " + err.Error()}}
				}
				if !ok {
					return nil
				}
			}
			ok, err := evalBool(valid, vars)
			if err != nil {
				// As a ValidatingAdmissionPolicy with failurePolicy Fail:
				// an expression that cannot decide does not pass.
				return []Violation{{Field: cc.Field, Message: "expression error: " + err.Error()}}
			}
			if ok {
				return nil
			}
			msg := cc.Message
			if msgExpr != nil {
				if v, _, err := msgExpr.Eval(vars); err == nil {
					if s, ok := v.Value().(string); ok && strings.TrimSpace(s) != "" {
						msg = s
					}
				}
			}
			if msg == "" {
				msg = "failed expression: " + cc.Expression
			}
			return []Violation{{Field: cc.Field, Message: msg}}
		},
	}, nil
}

func evalBool(p cel.Program, vars map[string]any) (bool, error) {
	v, _, err := p.Eval(vars)
	if err != nil {
		return false, err
	}
	b, ok := v.(types.Bool)
	if !ok {
		return false, fmt.Errorf("expression gave %s, want bool", v.Type())
	}
	return bool(b), nil
}

func nilIfEmpty(m map[string]any) any {
	if m == nil {
		return nil
	}
	return m
}
