package admission

import (
	"github.com/bulwark-sec/bulwark/check"
	"github.com/bulwark-sec/bulwark/check/source"
	"github.com/bulwark-sec/bulwark/manifest"
)

func sourceFiles(file string) ([]*check.Object, error) {
	return source.Files([]string{file}, nil, manifest.Limits{})
}
