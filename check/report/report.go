package report

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/bulwark-sec/bulwark/check"
	"github.com/bulwark-sec/bulwark/severity"
)

// ErrFormat: the output format is unknown.
var ErrFormat = errors.New("report: unknown format")

// Formats are the names Write accepts.
var Formats = []string{"table", "json", "sarif", "junit"}

// Counts counts results by severity.
type Counts struct {
	Critical int `json:"critical"`
	High     int `json:"high"`
	Medium   int `json:"medium"`
	Low      int `json:"low"`
	Info     int `json:"info"`
	Total    int `json:"total"`
}

func (c *Counts) add(l severity.Level) {
	switch l {
	case severity.Critical:
		c.Critical++
	case severity.High:
		c.High++
	case severity.Medium:
		c.Medium++
	case severity.Low:
		c.Low++
	default:
		c.Info++
	}
	c.Total++
}

// Summary counts results per framework, per namespace ("" is
// cluster-scoped) and overall.
type Summary struct {
	Objects     int               `json:"objects"`
	Checks      int               `json:"checks"`
	Total       Counts            `json:"total"`
	ByFramework map[string]Counts `json:"byFramework"`
	ByNamespace map[string]Counts `json:"byNamespace"`
}

// CheckInfo describes a check that ran.
type CheckInfo struct {
	ID          string            `json:"id"`
	Title       string            `json:"title"`
	Description string            `json:"description,omitempty"`
	Severity    severity.Level    `json:"severity"`
	References  []check.Reference `json:"references,omitempty"`
	Techniques  []check.Technique `json:"techniques,omitempty"`
	Fix         check.Fix         `json:"fix"`
}

// Report is the outcome of one assessment.
type Report struct {
	Summary Summary        `json:"summary"`
	Results []check.Result `json:"results"`
	Checks  []CheckInfo    `json:"checks"`
	// Errors are inputs that could not be read; the rest was assessed.
	Errors []string `json:"errors,omitempty"`
}

// New builds a report from results and the checks that ran.
func New(results []check.Result, checks []check.Check, objects int, inputErr error) Report {
	r := Report{Results: results, Summary: Summary{Objects: objects, Checks: len(checks),
		ByFramework: map[string]Counts{}, ByNamespace: map[string]Counts{}}}
	if r.Results == nil {
		r.Results = []check.Result{}
	}
	for _, c := range checks {
		r.Checks = append(r.Checks, CheckInfo{c.ID, c.Title, c.Description, c.Severity, c.References, c.Techniques, c.Fix})
	}
	for _, res := range results {
		r.Summary.Total.add(res.Severity)
		seen := map[string]bool{}
		for _, ref := range res.References {
			if !seen[ref.Framework] {
				seen[ref.Framework] = true
				c := r.Summary.ByFramework[ref.Framework]
				c.add(res.Severity)
				r.Summary.ByFramework[ref.Framework] = c
			}
		}
		c := r.Summary.ByNamespace[res.Object.Namespace]
		c.add(res.Severity)
		r.Summary.ByNamespace[res.Object.Namespace] = c
	}
	if inputErr != nil {
		for _, line := range strings.Split(inputErr.Error(), "\n") {
			r.Errors = append(r.Errors, line)
		}
	}
	return r
}

// AtLeast counts results of severity min or higher.
func (r Report) AtLeast(min severity.Level) int {
	n := 0
	for _, res := range r.Results {
		if res.Severity >= min {
			n++
		}
	}
	return n
}

// Write formats the report.
func Write(w io.Writer, format string, r Report) error {
	switch format {
	case "table", "":
		return writeTable(w, r)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "sarif":
		return writeSARIF(w, r)
	case "junit":
		return writeJUnit(w, r)
	}
	return fmt.Errorf("%w %q: want one of %s", ErrFormat, format, strings.Join(Formats, ", "))
}

func writeTable(w io.Writer, r Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEVERITY\tCHECK\tOBJECT\tCONTAINER\tFIELD\tMESSAGE")
	for _, res := range r.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", strings.ToUpper(res.Severity.String()), res.CheckID,
			res.Object, dash(res.Container), dash(res.Field), res.Message)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d objects, %d checks, %d results (critical %d, high %d, medium %d, low %d)\n",
		r.Summary.Objects, r.Summary.Checks, r.Summary.Total.Total, r.Summary.Total.Critical,
		r.Summary.Total.High, r.Summary.Total.Medium, r.Summary.Total.Low)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nFRAMEWORK\tCRITICAL\tHIGH\tMEDIUM\tLOW\tTOTAL")
	for _, k := range sortedKeys(r.Summary.ByFramework) {
		c := r.Summary.ByFramework[k]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\n", k, c.Critical, c.High, c.Medium, c.Low, c.Total)
	}
	fmt.Fprintln(tw, "\nNAMESPACE\tCRITICAL\tHIGH\tMEDIUM\tLOW\tTOTAL")
	for _, k := range sortedKeys(r.Summary.ByNamespace) {
		c := r.Summary.ByNamespace[k]
		name := k
		if name == "" {
			name = "(cluster)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\n", name, c.Critical, c.High, c.Medium, c.Low, c.Total)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(tw, "error: %s\n", e)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// sourceFile is the file part of a result's Source ("a.yaml#2 (x)" -> "a.yaml").
func sourceFile(s string) string {
	if i := strings.IndexByte(s, '#'); i >= 0 {
		return s[:i]
	}
	return s
}

// SARIF 2.1.0, the subset we fill.
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}
type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}
type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}
type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}
type sarifText struct {
	Text string `json:"text"`
}
type sarifRule struct {
	ID                   string         `json:"id"`
	ShortDescription     sarifText      `json:"shortDescription"`
	FullDescription      sarifText      `json:"fullDescription"`
	Help                 sarifText      `json:"help"`
	DefaultConfiguration map[string]any `json:"defaultConfiguration"`
	Properties           map[string]any `json:"properties"`
}
type sarifResult struct {
	RuleID     string          `json:"ruleId"`
	RuleIndex  int             `json:"ruleIndex"`
	Level      string          `json:"level"`
	Message    sarifText       `json:"message"`
	Locations  []sarifLocation `json:"locations"`
	Properties map[string]any  `json:"properties,omitempty"`
}
type sarifLocation struct {
	PhysicalLocation *sarifPhysical `json:"physicalLocation,omitempty"`
	LogicalLocations []sarifLogical `json:"logicalLocations"`
}
type sarifPhysical struct {
	ArtifactLocation struct {
		URI string `json:"uri"`
	} `json:"artifactLocation"`
}
type sarifLogical struct {
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

func sarifLevel(l severity.Level) string {
	switch {
	case l >= severity.High:
		return "error"
	case l == severity.Medium:
		return "warning"
	}
	return "note"
}

func writeSARIF(w io.Writer, r Report) error {
	run := sarifRun{Tool: sarifTool{Driver: sarifDriver{Name: "bulwark", InformationURI: "https://github.com/bulwark-sec/bulwark"}}, Results: []sarifResult{}}
	index := map[string]int{}
	for i, c := range r.Checks {
		index[c.ID] = i
		var tags []string
		for _, ref := range c.References {
			tags = append(tags, strings.TrimSpace(ref.Framework+" "+ref.Control))
		}
		for _, t := range c.Techniques {
			tags = append(tags, t.ID)
		}
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRule{
			ID: c.ID, ShortDescription: sarifText{c.Title}, FullDescription: sarifText{orTitle(c.Description, c.Title)},
			Help:                 sarifText{c.Fix.Text},
			DefaultConfiguration: map[string]any{"level": sarifLevel(c.Severity)},
			Properties:           map[string]any{"tags": tags, "security-severity": securitySeverity(c.Severity)},
		})
	}
	for _, res := range r.Results {
		loc := sarifLocation{LogicalLocations: []sarifLogical{{FullyQualifiedName: res.Object.String() + "/" + res.Field, Kind: "object"}}}
		if f := sourceFile(res.Source); f != "" && f != "cluster" {
			loc.PhysicalLocation = &sarifPhysical{}
			loc.PhysicalLocation.ArtifactLocation.URI = f
		}
		run.Results = append(run.Results, sarifResult{
			RuleID: res.CheckID, RuleIndex: index[res.CheckID], Level: sarifLevel(res.Severity),
			Message:    sarifText{fmt.Sprintf("%s: %s (fix: %s)", res.Object, res.Message, res.Fix.Text)},
			Locations:  []sarifLocation{loc},
			Properties: map[string]any{"container": res.Container, "field": res.Field, "source": res.Source},
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sarifLog{Schema: "https://json.schemastore.org/sarif-2.1.0.json", Version: "2.1.0", Runs: []sarifRun{run}})
}

func securitySeverity(l severity.Level) string {
	return map[severity.Level]string{severity.Critical: "9.5", severity.High: "8.0", severity.Medium: "5.5", severity.Low: "3.0"}[l]
}

func orTitle(d, t string) string {
	if d == "" {
		return t
	}
	return d
}

// JUnit: one test suite per check, one failing test case per result, one
// passing case for a check without results.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}
type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Cases    []junitCase `xml:"testcase"`
}
type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
}
type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

func writeJUnit(w io.Writer, r Report) error {
	by := map[string][]check.Result{}
	for _, res := range r.Results {
		by[res.CheckID] = append(by[res.CheckID], res)
	}
	out := junitSuites{Name: "bulwark"}
	for _, c := range r.Checks {
		s := junitSuite{Name: c.ID + ": " + c.Title}
		for _, res := range by[c.ID] {
			s.Cases = append(s.Cases, junitCase{Name: strings.TrimSuffix(res.Object.String()+" "+res.Field, " "), Classname: c.ID,
				Failure: &junitFailure{Message: res.Message, Type: res.Severity.String(),
					Text: fmt.Sprintf("object: %s\ncontainer: %s\nfield: %s\nfix: %s\nsource: %s", res.Object, res.Container, res.Field, res.Fix.Text, res.Source)}})
			s.Failures++
		}
		if len(s.Cases) == 0 {
			s.Cases = append(s.Cases, junitCase{Name: "all objects", Classname: c.ID})
		}
		s.Tests = len(s.Cases)
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Suites = append(out.Suites, s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
