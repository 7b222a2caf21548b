package tlsconf_test

import (
	"os"
	"testing"

	"github.com/mqttguard/mqttguard/internal/testenv"
)

// TestMain says, after the tests, which programs they missed (see
// testenv.Main): go test shows nothing else of a passing package.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m, "tlsconf")) }
