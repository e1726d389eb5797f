package advisory_test

import (
	"context"
	"fmt"
	"os"

	"github.com/bulwark-sec/bulwark/advisory"
)

// The scan step's use: import once (bulwark db import / db update), then
// open the index and match an inventory. The records are the written ones
// of testdata/written.
func Example() {
	dir, _ := os.MkdirTemp("", "example-")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	if _, err := advisory.Import(ctx, advisory.ImportConfig{Dir: dir, Sources: []advisory.Source{{Path: "testdata/written"}}}); err != nil {
		fmt.Println(err)
		return
	}
	db, err := advisory.Open(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	ms, _ := db.Match(ctx, []advisory.Package{
		{Ecosystem: "Debian:12", Name: "libssl3", SourceName: "openssl", Version: "3.0.11-1~deb12u1"},
		{Ecosystem: "Debian:12", Name: "gcc-12-base", SourceName: "gcc-12", Version: "12.2.0-14"},
		{Ecosystem: "npm", Name: "lodash", Version: "4.17.20"},
	})
	for _, m := range ms {
		fix := "no fix yet"
		if m.HasFix() {
			fix = "fixed in " + m.Fixed[0]
		}
		fmt.Println(m.Package.Name, m.ID, fix, m.Severity.Level)
	}
	// Output:
	// libssl3 DEBIAN-CVE-2023-5363 fixed in 3.0.11-1~deb12u2 unknown
	// libssl3 DSA-5532-1 fixed in 3.0.11-1~deb12u2 unknown
	// gcc-12-base DEBIAN-CVE-2023-4039 no fix yet unknown
	// lodash GHSA-35jh-r3h4-6jhm fixed in 4.17.21 high
}
