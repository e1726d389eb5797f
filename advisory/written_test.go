package advisory

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwark-sec/bulwark/severity"
)

// The records in testdata/written are WRITTEN for these tests, not real
// data: Debian (DSA-, DLA-, DEBIAN-CVE-), Ubuntu, Alpine, npm and Maven
// records shaped like the ones osv.dev publishes (ids, ecosystems with
// release suffixes, source package names with pkg:deb/...?arch=source
// PURLs, related/upstream CVE lists, Ubuntu's own severity, GitHub's
// database_specific.severity). Their versions and fixes are those of the
// real advisories of the same ids, except GHSA-p6mc-m468-83gw, whose
// last_affected event is made up to cover that event type.
// testdata/written/not-osv.json is not an OSV record and must be skipped.

func writtenIndex(t *testing.T) *DB {
	t.Helper()
	dir := t.TempDir()
	res, err := Import(context.Background(), ImportConfig{Dir: dir, Sources: []Source{{Path: "testdata/written"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Skipped) != 1 || res.Skipped[0].Origin != "not-osv.json" {
		t.Errorf("skipped = %+v, want only not-osv.json", res.Skipped)
	}
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

type got struct {
	ID       string
	Fixed    []string
	Last     []string
	Level    severity.Level
	Source   string
	Rating   string
	Related  []string
	Upstream []string
}

func summarizeMatches(ms []Match) []got {
	var out []got
	for _, m := range ms {
		out = append(out, got{m.ID, m.Fixed, m.LastAffected, m.Severity.Level, m.Severity.Source, m.Severity.Rating, m.Related, m.Upstream})
	}
	return out
}

func TestWrittenRecords(t *testing.T) {
	db := writtenIndex(t)
	tests := []struct {
		name string
		pkg  Package
		want []got
	}{
		{
			// libssl3 is a binary of the openssl source package: Debian
			// publishes per source package.
			name: "debian binary package matched by source",
			pkg:  Package{Ecosystem: "Debian:12", Name: "libssl3", SourceName: "openssl", Version: "3.0.11-1~deb12u1"},
			want: []got{
				{ID: "DEBIAN-CVE-2023-5363", Fixed: []string{"3.0.11-1~deb12u2"}, Upstream: []string{"CVE-2023-5363"}},
				{ID: "DSA-5532-1", Fixed: []string{"3.0.11-1~deb12u2"}, Related: []string{"CVE-2023-5363", "CVE-2023-5678"}},
			},
		},
		{
			name: "debian fixed version is not affected",
			pkg:  Package{Ecosystem: "Debian:12", Name: "openssl", Version: "3.0.11-1~deb12u2"},
		},
		{
			name: "debian binary name alone does not match a source advisory",
			pkg:  Package{Ecosystem: "Debian:12", Name: "libssl3", Version: "3.0.11-1~deb12u1"},
		},
		{
			name: "debian other release: the DLA for Debian 10 only",
			pkg:  Package{Ecosystem: "Debian:10", Name: "openssl", Version: "1.1.1n-0+deb10u5"},
			want: []got{{ID: "DLA-3530-1", Fixed: []string{"1.1.1n-0+deb10u6"}, Related: []string{"CVE-2023-2650", "CVE-2023-3446", "CVE-2023-3817"}}},
		},
		{
			name: "debian no fix yet",
			pkg:  Package{Ecosystem: "Debian:12", Name: "gcc-12-base", SourceName: "gcc-12", Version: "12.2.0-14"},
			want: []got{{ID: "DEBIAN-CVE-2023-4039", Upstream: []string{"CVE-2023-4039"}}},
		},
		{
			name: "debian binNMU: source version used",
			pkg:  Package{Ecosystem: "Debian:12", Name: "libssl3", SourceName: "openssl", Version: "3.0.11-1~deb12u2+b1", SourceVersion: "3.0.11-1~deb12u2"},
		},
		{
			name: "ubuntu with its own rating, suffix without :LTS",
			pkg:  Package{Ecosystem: "Ubuntu:22.04", Name: "libssl3", SourceName: "openssl", Version: "3.0.2-0ubuntu1.10"},
			want: []got{{ID: "UBUNTU-CVE-2023-5363", Fixed: []string{"3.0.2-0ubuntu1.12"}, Level: severity.Medium, Source: "distro", Rating: "medium", Upstream: []string{"CVE-2023-5363"}}},
		},
		{
			name: "ubuntu pro is another release",
			pkg:  Package{Ecosystem: "Ubuntu:Pro:22.04:LTS", Name: "openssl", Version: "3.0.2-0ubuntu1.10"},
		},
		{
			name: "alpine by origin",
			pkg:  Package{Ecosystem: "Alpine:v3.18", Name: "libcrypto3", SourceName: "openssl", Version: "3.1.3-r0"},
			want: []got{{ID: "ALPINE-CVE-2023-5363", Fixed: []string{"3.1.4-r0"}, Upstream: []string{"CVE-2023-5363"}}},
		},
		{
			name: "alpine other release does not match",
			pkg:  Package{Ecosystem: "Alpine:v3.19", Name: "libcrypto3", SourceName: "openssl", Version: "3.1.3-r0"},
		},
		{
			name: "npm with CVSS and last_affected",
			pkg:  Package{Ecosystem: "npm", Name: "lodash", Version: "4.17.15"},
			want: []got{
				{ID: "GHSA-35jh-r3h4-6jhm", Fixed: []string{"4.17.21"}, Level: severity.High, Source: "cvss", Rating: "HIGH"},
				{ID: "GHSA-p6mc-m468-83gw", Last: []string{"4.17.19"}, Level: severity.High, Source: "database", Rating: "HIGH"},
			},
		},
		{
			name: "npm past last_affected",
			pkg:  Package{Ecosystem: "npm", Name: "lodash", Version: "4.17.20"},
			want: []got{{ID: "GHSA-35jh-r3h4-6jhm", Fixed: []string{"4.17.21"}, Level: severity.High, Source: "cvss", Rating: "HIGH"}},
		},
		{
			name: "maven middle range, CVSS v4 preferred",
			pkg:  Package{Ecosystem: "Maven", Name: "org.apache.logging.log4j:log4j-core", Version: "2.14.1"},
			want: []got{{ID: "GHSA-jfh8-c2jp-5v3q", Fixed: []string{"2.15.0"}, Level: severity.Critical, Source: "cvss", Rating: "CRITICAL"}},
		},
		{
			name: "maven before introduced",
			pkg:  Package{Ecosystem: "Maven", Name: "org.apache.logging.log4j:log4j-core", Version: "2.0-beta8"},
		},
		{
			name: "maven between ranges",
			pkg:  Package{Ecosystem: "Maven", Name: "org.apache.logging.log4j:log4j-core", Version: "2.12.4"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := db.Query(tt.pkg)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, summarizeMatches(ms)); diff != "" {
				t.Errorf("Query(%+v) (-want +got):\n%s", tt.pkg, diff)
			}
		})
	}
}

func TestWrittenScore(t *testing.T) {
	db := writtenIndex(t)
	ms, err := db.Query(Package{Ecosystem: "Maven", Name: "org.apache.logging.log4j:log4j-core", Version: "2.14.1"})
	if err != nil || len(ms) != 1 {
		t.Fatalf("Query = %v, %v", ms, err)
	}
	s := ms[0].Severity
	if s.Score != 10 || len(s.CVSS) != 2 || s.CVSS[0].Base != 10 || s.CVSS[0].Version != "3.1" {
		t.Errorf("severity = %+v, want v3.1 10.0 and v4.0 scored, v4.0 chosen (10)", s)
	}
	if got, want := ms[0].Aliases, []string{"CVE-2021-44228"}; !cmp.Equal(got, want) {
		t.Errorf("aliases = %v, want %v", got, want)
	}
}
