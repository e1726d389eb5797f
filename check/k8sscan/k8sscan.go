package k8sscan

import (
	"context"
	"errors"
	"fmt"
	"io"

	"k8s.io/client-go/kubernetes"

	"github.com/bulwark-sec/bulwark/check"
	"github.com/bulwark-sec/bulwark/check/report"
	"github.com/bulwark-sec/bulwark/check/source"
	"github.com/bulwark-sec/bulwark/manifest"
)

// ErrNoInput: neither files nor a cluster were given.
var ErrNoInput = errors.New("k8sscan: no input: give files or a cluster")

// Options says what to scan and with which checks.
type Options struct {
	// Files are manifest files, directories or "-" for Stdin.
	Files []string
	Stdin io.Reader
	// Client, when set and Files is empty, is the live cluster to scan.
	Client    kubernetes.Interface
	Namespace string
	// Config parameterises the built-in checks; UserChecks are CEL files.
	Config     check.Config
	UserChecks []string
	Limits     manifest.Limits
}

// Engine builds the engine Options describe: every built-in check and the
// user checks.
func Engine(o Options) (*check.Engine, error) {
	user, err := check.LoadCEL(o.UserChecks...)
	if err != nil {
		return nil, err
	}
	return check.NewEngine(o.Config, append(check.Builtin(), user...))
}

// Scan gathers the objects and assesses them. Inputs that cannot be read
// are listed in Report.Errors and the rest is assessed; an error is
// returned only when nothing could be assessed.
func Scan(ctx context.Context, o Options) (report.Report, error) {
	e, err := Engine(o)
	if err != nil {
		return report.Report{}, err
	}
	var objs []*check.Object
	var inErr error
	switch {
	case len(o.Files) > 0:
		objs, inErr = source.Files(o.Files, o.Stdin, o.Limits)
	case o.Client != nil:
		objs, inErr = source.Cluster(ctx, o.Client, o.Namespace)
	default:
		return report.Report{}, ErrNoInput
	}
	if len(objs) == 0 && inErr != nil {
		return report.Report{}, fmt.Errorf("k8sscan: nothing to assess: %w", inErr)
	}
	return report.New(e.Assess(objs), e.Checks(), len(objs), inErr), nil
}
