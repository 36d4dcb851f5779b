package lora

import (
	"slices"
	"strings"
	"testing"
)

// TestPeftTargetsMalformed checks that peftTargets reports a malformed
// target instead of writing it into target_modules, and still maps a fused
// target to its layer name.
func TestPeftTargetsMalformed(t *testing.T) {
	m := &Model{}
	got, err := m.peftTargets(Config{Targets: []string{"c_attn[q,v]"}}, nil)
	if err != nil || !slices.Equal(got, []string{"c_attn"}) {
		t.Fatalf("peftTargets(c_attn[q,v]) = %v, %v; want [c_attn], nil", got, err)
	}
	for _, bad := range []string{"c_attn[q,", "c_attn[q,q]", "[q]", ""} {
		got, err := m.peftTargets(Config{Targets: []string{"c_fc", bad}}, nil)
		if err == nil || !strings.Contains(err.Error(), "target") {
			t.Errorf("peftTargets(%q) = %v, %v; want an error naming the target", bad, got, err)
		}
	}
}
