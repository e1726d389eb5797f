package severity

import (
	"encoding/json"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    Level
		wantErr bool
	}{
		{"", Unknown, false},
		{"LOW", Low, false},
		{"Moderate", Medium, false},
		{"important", High, false},
		{" critical ", Critical, false},
		{"negligible", Info, false},
		{"severe", Unknown, true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("Parse(%q) = %v, %v; want %v, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestFromCVSS(t *testing.T) {
	tests := []struct {
		score float64
		want  Level
	}{
		{0, Info}, {0.1, Low}, {3.9, Low}, {4.0, Medium}, {6.9, Medium},
		{7.0, High}, {8.9, High}, {9.0, Critical}, {10, Critical},
	}
	for _, tt := range tests {
		if got := FromCVSS(tt.score); got != tt.want {
			t.Errorf("FromCVSS(%v) = %v, want %v", tt.score, got, tt.want)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	for l := Unknown; l <= Critical; l++ {
		b, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		var back Level
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		if back != l {
			t.Errorf("round trip of %v gave %v", l, back)
		}
	}
	if !(Critical > High && High > Medium && Medium > Low && Low > Info && Info > Unknown) {
		t.Error("levels do not order")
	}
}
