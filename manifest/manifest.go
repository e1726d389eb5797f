package manifest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// Errors; test with errors.Is.
var (
	// ErrTooLarge: the input or one document is over a limit.
	ErrTooLarge = errors.New("manifest: too large")
	// ErrTooDeep: a document nests deeper than Limits.MaxDepth.
	ErrTooDeep = errors.New("manifest: nested too deeply")
	// ErrInvalid: a document is not a Kubernetes object.
	ErrInvalid = errors.New("manifest: not a Kubernetes object")
)

// Limits bound what Parse accepts. Zero fields take the defaults.
type Limits struct {
	MaxBytes    int64 // whole input; default 256 MiB
	MaxDocBytes int   // one document; default 16 MiB
	MaxObjects  int   // objects in all; default 1,000,000
	MaxDepth    int   // JSON nesting; default 64
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = 256 << 20
	}
	if l.MaxDocBytes <= 0 {
		l.MaxDocBytes = 16 << 20
	}
	if l.MaxObjects <= 0 {
		l.MaxObjects = 1_000_000
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = 64
	}
	return l
}

// Object is one decoded object and where it came from.
type Object struct {
	// Object is a k8s.io/api type, or *unstructured.Unstructured.
	Object runtime.Object
	// Source is "name#N" (N counts documents from 1) followed, for Helm
	// output, by the template path: "out.yaml#3 (chart/templates/deploy.yaml)".
	Source string
}

// Parse reads every object in r; name names the input in sources and
// errors. Errors of single documents are returned together (errors.Join)
// with the objects of every good document.
func Parse(r io.Reader, name string, lim Limits) ([]Object, error) {
	lim = lim.withDefaults()
	data, err := io.ReadAll(io.LimitReader(r, lim.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("manifest: read %s: %w", name, err)
	}
	if int64(len(data)) > lim.MaxBytes {
		return nil, fmt.Errorf("%w: %s is over %d bytes", ErrTooLarge, name, lim.MaxBytes)
	}
	p := parser{lim: lim, name: name}
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		p.jsonStream(trimmed)
	} else {
		p.yamlStream(data)
	}
	return p.out, errors.Join(p.errs...)
}

type parser struct {
	lim  Limits
	name string
	doc  int
	out  []Object
	errs []error
}

func (p *parser) fail(src string, err error) { p.errs = append(p.errs, fmt.Errorf("%s: %w", src, err)) }

func (p *parser) jsonStream(data []byte) {
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return
		}
		p.doc++
		src := fmt.Sprintf("%s#%d", p.name, p.doc)
		if err != nil {
			p.fail(src, fmt.Errorf("%w: %w", ErrInvalid, err))
			return // a JSON stream cannot resynchronise
		}
		p.document(raw, src)
	}
}

func (p *parser) yamlStream(data []byte) {
	rd := utilyaml.NewYAMLReader(bufio.NewReaderSize(bytes.NewReader(data), 64<<10))
	for {
		chunk, err := rd.Read()
		if errors.Is(err, io.EOF) {
			return
		}
		p.doc++
		src := fmt.Sprintf("%s#%d", p.name, p.doc)
		if err != nil {
			p.fail(src, fmt.Errorf("%w: %w", ErrInvalid, err))
			return
		}
		if helm := helmSource(chunk); helm != "" {
			src += " (" + helm + ")"
		}
		if len(chunk) > p.lim.MaxDocBytes {
			p.fail(src, fmt.Errorf("%w: document is over %d bytes", ErrTooLarge, p.lim.MaxDocBytes))
			continue
		}
		if err := yamlDepth(chunk, p.lim.MaxDepth); err != nil {
			p.fail(src, err)
			continue
		}
		js, err := yaml.YAMLToJSON(chunk)
		if err != nil {
			p.fail(src, fmt.Errorf("%w: %w", ErrInvalid, err))
			continue
		}
		p.document(js, src)
	}
}

// helmSource finds the "# Source: path" comment Helm puts before each document.
func helmSource(chunk []byte) string {
	for _, line := range strings.SplitN(string(chunk[:min(len(chunk), 4096)]), "\n", 8) {
		if s, ok := strings.CutPrefix(strings.TrimSpace(line), "# Source: "); ok {
			return strings.TrimSpace(s)
		}
	}
	return ""
}

// document decodes one JSON document: an object, a List, an array or null.
func (p *parser) document(js []byte, src string) {
	js = bytes.TrimSpace(js)
	if len(js) == 0 || bytes.Equal(js, []byte("null")) {
		return // empty document (comments only, as Helm leaves)
	}
	if len(js) > p.lim.MaxDocBytes {
		p.fail(src, fmt.Errorf("%w: document is over %d bytes", ErrTooLarge, p.lim.MaxDocBytes))
		return
	}
	if err := jsonDepth(js, p.lim.MaxDepth); err != nil {
		p.fail(src, err)
		return
	}
	if js[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(js, &items); err != nil {
			p.fail(src, fmt.Errorf("%w: %w", ErrInvalid, err))
			return
		}
		for i, it := range items {
			p.object(it, fmt.Sprintf("%s[%d]", src, i))
		}
		return
	}
	p.object(js, src)
}

type listHead struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Items      *[]json.RawMessage `json:"items"`
}

func (p *parser) object(js []byte, src string) {
	var head listHead
	if err := json.Unmarshal(js, &head); err != nil {
		p.fail(src, fmt.Errorf("%w: %w", ErrInvalid, err))
		return
	}
	if head.Kind == "" || head.APIVersion == "" {
		p.fail(src, fmt.Errorf("%w: apiVersion and kind are required", ErrInvalid))
		return
	}
	if strings.HasSuffix(head.Kind, "List") && head.Items != nil {
		for i, it := range *head.Items {
			p.object(it, fmt.Sprintf("%s.items[%d]", src, i))
		}
		return
	}
	if len(p.out) >= p.lim.MaxObjects {
		p.fail(src, fmt.Errorf("%w: more than %d objects", ErrTooLarge, p.lim.MaxObjects))
		return
	}
	obj, err := Decode(js)
	if err != nil {
		p.fail(src, err)
		return
	}
	p.out = append(p.out, Object{Object: obj, Source: src})
}

var deserializer = scheme.Codecs.UniversalDeserializer()

// Decode turns one JSON object into its k8s.io/api type, or into
// *unstructured.Unstructured for kinds the scheme does not know.
func Decode(js []byte) (runtime.Object, error) {
	obj, gvk, err := deserializer.Decode(js, nil, nil)
	if err == nil {
		obj.GetObjectKind().SetGroupVersionKind(*gvk)
		return obj, nil
	}
	if !runtime.IsNotRegisteredError(err) {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return u, nil
}

// jsonDepth rejects JSON nested deeper than max, without decoding it.
func jsonDepth(js []byte, max int) error {
	depth, inStr, esc := 0, false, false
	for _, b := range js {
		switch {
		case esc:
			esc = false
		case inStr:
			if b == '\\' {
				esc = true
			} else if b == '"' {
				inStr = false
			}
		case b == '"':
			inStr = true
		case b == '{' || b == '[':
			depth++
			if depth > max {
				return fmt.Errorf("%w: deeper than %d levels", ErrTooDeep, max)
			}
		case b == '}' || b == ']':
			depth--
		}
	}
	return nil
}

// yamlDepth is a cheap guard before YAML parsing: flow collections ({ [)
// nested beyond max, or indentation deeper than 2*max columns, are refused.
func yamlDepth(y []byte, max int) error {
	flow := 0
	for _, line := range bytes.Split(y, []byte("\n")) {
		indent := len(line) - len(bytes.TrimLeft(line, " -"))
		if indent > 4*max {
			return fmt.Errorf("%w: indented deeper than %d levels", ErrTooDeep, max)
		}
		for _, b := range line {
			switch b {
			case '{', '[':
				flow++
				if flow > max {
					return fmt.Errorf("%w: deeper than %d levels", ErrTooDeep, max)
				}
			case '}', ']':
				flow--
			}
		}
	}
	return nil
}
