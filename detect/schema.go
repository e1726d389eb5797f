package detect

import (
	"encoding/json"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/interpreter"
)

// Schema describes one kind of event to the engine: its source name, the
// facets rules may match on (cheap string attributes, the first two of which
// are indexed), and the CEL variables its events provide.
type Schema struct {
	// Source names the kind of event: "audit", "runtime". Rules whose
	// source differs are not loaded into this schema's engine.
	Source string
	// Facets are the keys allowed in a rule's match block and in exception
	// match blocks, in index order: Facets[0] and Facets[1] are indexed.
	Facets []string
	// Variables declares the CEL variables every event provides.
	Variables []cel.EnvOption
}

// Event is one normalised input the engine evaluates.
type Event interface {
	// Facet returns the value of Schema.Facets[i]; "" when absent.
	Facet(i int) string
	// Activation resolves the CEL variables of Schema.Variables. Values
	// may be computed lazily and cached by the event; the engine calls it
	// once per evaluated event.
	Activation() interpreter.Activation
	// Subject says when, where and by whom, for the alert.
	Subject() Subject
	// Evidence returns the event, trimmed, for the alert's evidence.
	Evidence() json.RawMessage
}
