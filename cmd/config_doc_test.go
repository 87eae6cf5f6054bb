package cmd_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// TestConfigurationDocCoversEveryVariable keeps docs/configuration.md in
// step with the binaries: every environment variable a binary's --help
// names must be documented (regenerate with scripts/gen-config-doc.sh).
func TestConfigurationDocCoversEveryVariable(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	envRef := regexp.MustCompile(`\$([A-Z][A-Z0-9_]+)`)
	documented := map[string]bool{}
	for _, w := range regexp.MustCompile(`[A-Z][A-Z0-9_]+`).FindAllString(string(doc), -1) {
		documented[w] = true
	}
	for _, name := range functions {
		bin := build(t, name)
		help, _ := exec.Command(bin, "--help").CombinedOutput()
		vars := envRef.FindAllStringSubmatch(string(help), -1)
		if len(vars) == 0 {
			t.Fatalf("%s --help names no environment variables", name)
		}
		for _, m := range vars {
			if !documented[m[1]] {
				t.Errorf("docs/configuration.md lacks %s (%s); run scripts/gen-config-doc.sh", m[1], name)
			}
		}
	}
}
