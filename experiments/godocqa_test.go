package experiments

import (
	"fmt"
	"strings"
	"testing"

	"github.com/golora/golora/chat"
)

func TestGoDocQA(t *testing.T) {
	root, err := FindGoRoot()
	if err != nil {
		t.Skip(err)
	}
	o := GoDocOptions{Packages: []string{"strings", "sort", "unicode/utf8"}, Seed: 3}
	convs, text, err := GoDocQA(root, o)
	if err != nil {
		t.Fatal(err)
	}
	again, text2, _ := GoDocQA(root, o)
	if fmt.Sprint(convs) != fmt.Sprint(again) || text != text2 {
		t.Error("the same options gave another data set")
	}
	other, _, _ := GoDocQA(root, GoDocOptions{Packages: o.Packages, Seed: 4})
	if fmt.Sprint(convs) == fmt.Sprint(other) {
		t.Error("another seed gave the same data set")
	}
	found := map[string]string{}
	multi, system := 0, 0
	for _, c := range convs {
		if err := c.Validate(); err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		users := 0
		for i, m := range c.Messages {
			switch m.Role {
			case chat.RoleSystem:
				system++
			case chat.RoleUser:
				users++
				found[m.Content] = c.Messages[i+1].Content
			}
		}
		if users > 1 {
			multi++
		}
	}
	if multi == 0 || system == 0 {
		t.Errorf("%d two-exchange conversations and %d with a system message, want some of each", multi, system)
	}
	var contains, pkg bool
	for q, a := range found {
		switch {
		case strings.Contains(q, "strings.Contains ") || strings.HasSuffix(q, "strings.Contains?") || strings.HasSuffix(q, "strings.Contains for?"):
			contains = contains || a == "strings.Contains reports whether substr is within s."
		case strings.Contains(q, " strings") && strings.Contains(q, "package"):
			pkg = a == "Package strings implements simple functions to manipulate UTF-8 encoded strings."
		case strings.HasPrefix(q, "What is the signature of "):
			if !strings.HasPrefix(a, "func ") {
				t.Errorf("%s → %s", q, a)
			}
		}
	}
	if !contains || !pkg {
		t.Errorf("strings.Contains answered %v, the package question %v", contains, pkg)
	}
	if !strings.Contains(text, "Contains reports whether substr is within s.") {
		t.Error("the doc text lacks strings.Contains's comment")
	}
	if _, _, err := GoDocQA(root, GoDocOptions{Packages: []string{"no/such/package"}}); err == nil || !strings.Contains(err.Error(), "no/such/package") {
		t.Errorf("a missing package: %v", err)
	}
	few, _, _ := GoDocQA(root, GoDocOptions{Packages: o.Packages, Max: 5})
	if len(few) != 5 {
		t.Errorf("Max 5 gave %d", len(few))
	}
}
