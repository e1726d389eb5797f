package cvss

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwark-sec/bulwark/severity"
)

func TestParse(t *testing.T) {
	// Vectors and scores as published by NVD and in the bundled OSV records
	// (crates.io RUSTSEC records carry the v3.1 and v4.0 ones).
	tests := []struct {
		vector string
		want   Score
	}{
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", Score{Version: "3.1", Base: 9.8, Level: severity.Critical}},                    // CVE-2021-44228-like
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", Score{Version: "3.1", Base: 7.5, Level: severity.High}},                        // CVE-2023-44487
		{"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", Score{Version: "3.1", Base: 5.9, Level: severity.Medium}},                      // CVE-2016-2183
		{"CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:L/I:N/A:N", Score{Version: "3.1", Base: 2.5, Level: severity.Low}},                         //
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", Score{Version: "3.1", Base: 10.0, Level: severity.Critical}},                   // CVE-2021-44228
		{"CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", Score{Version: "3.0", Base: 8.8, Level: severity.High}},                        //
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", Score{Version: "3.1", Base: 0, Level: severity.Info}},                          //
		{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", Score{Version: "4.0", Base: 9.3, Level: severity.Critical}}, // FIRST example
		{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N", Score{Version: "4.0", Base: 8.7, Level: severity.High}},     //
		{"AV:N/AC:L/Au:N/C:P/I:P/A:P", Score{Version: "2.0", Base: 7.5, Level: severity.High}},                                          // NVD v2
		{"AV:N/AC:M/Au:N/C:N/I:P/A:N", Score{Version: "2.0", Base: 4.3, Level: severity.Medium}},                                        //
	}
	for _, tt := range tests {
		got, err := Parse(tt.vector)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.vector, err)
			continue
		}
		tt.want.Vector = tt.vector
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tt.vector, diff)
		}
	}
}

func TestParseInvalid(t *testing.T) {
	for _, v := range []string{"", "CVSS:3.1/", "CVSS:3.1/AV:X/AC:L", "CVSS:4.0/AV:N", "garbage", "CVSS:3.1/" + string(make([]byte, 2000))} {
		if _, err := Parse(v); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%.40q) = %v, want ErrInvalid", v, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
	f.Add("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N")
	f.Add("AV:N/AC:L/Au:N/C:P/I:P/A:P")
	f.Fuzz(func(t *testing.T, v string) {
		s, err := Parse(v)
		if err != nil {
			return
		}
		if s.Base < 0 || s.Base > 10 {
			t.Fatalf("Parse(%q) base %v out of range", v, s.Base)
		}
	})
}
