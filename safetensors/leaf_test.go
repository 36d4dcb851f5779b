package safetensors

import (
	"testing"

	"github.com/golora/golora/internal/testutil"
)

// The file-format package depends on nothing of golora's outside internal/.
func TestLeafPackage(t *testing.T) {
	testutil.CheckLeaf(t, ".")
}
