package detect_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/interpreter"

	"github.com/bulwark-sec/bulwark/detect"
)

// execEvent is how a node sensor could present a process execution to the
// engine: its own facets and variables, the shared alert model.
type execEvent struct {
	Exe, Parent, Container, Image string
	At                            time.Time
}

func (e *execEvent) Facet(i int) string { return [...]string{"exec", e.Exe}[i] }
func (e *execEvent) Activation() interpreter.Activation {
	a, _ := interpreter.NewActivation(map[string]any{"exe": e.Exe, "parent": e.Parent, "image": e.Image})
	return a
}
func (e *execEvent) Subject() detect.Subject {
	return detect.Subject{Time: e.At, Resource: "container/" + e.Container, Actor: detect.Actor{
		Workload: &detect.Workload{Container: e.Container, Image: e.Image},
		Process:  &detect.Process{Exe: e.Exe, Ancestry: []string{e.Parent}},
	}}
}
func (e *execEvent) Evidence() json.RawMessage { b, _ := json.Marshal(e); return b }

// Example shows the rule format and engine serving a second event source,
// as the node sensor does for kernel events.
func Example() {
	schema := detect.Schema{
		Source: "runtime",
		Facets: []string{"type", "exe"},
		Variables: []cel.EnvOption{
			cel.Variable("exe", cel.StringType), cel.Variable("parent", cel.StringType), cel.Variable("image", cel.StringType),
		},
	}
	rules, err := detect.ParseRules("runtime.yaml", []byte(`
rules:
- id: RT-WEB-SHELL
  title: Web server spawned a shell
  source: runtime
  severity: high
  mitre: {tactic: TA0003, technique: T1505.003}
  match: {type: [exec], exe: [/bin/sh, /bin/bash, /bin/dash]}
  condition: parent in ['nginx', 'httpd', 'apache2', 'php-fpm', 'java', 'node']
  message: "parent + ' started ' + exe + ' in ' + image"
  exceptions:
  - {name: health checks, condition: "image.startsWith('registry.example/probe')"}
`), "")
	if err != nil {
		fmt.Println(err)
		return
	}
	e, err := detect.Compile(schema, rules, detect.Options{Cluster: "prod"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, ev := range []*execEvent{
		{Exe: "/bin/sh", Parent: "nginx", Container: "web", Image: "nginx:1.27"},
		{Exe: "/usr/bin/curl", Parent: "nginx", Container: "web", Image: "nginx:1.27"},
		{Exe: "/bin/sh", Parent: "containerd-shim", Container: "web", Image: "nginx:1.27"},
	} {
		for _, a := range e.Evaluate(ev) {
			fmt.Println(a.RuleID, a.Technique, a.TechniqueName, "-", a.Message)
		}
	}
	// Output:
	// RT-WEB-SHELL T1505.003 Web Shell - nginx started /bin/sh in nginx:1.27
}
