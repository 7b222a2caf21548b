package testenv

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestReportNamesEachMissingProgramOnce(t *testing.T) {
	var s skips
	var out strings.Builder
	s.report(&out, "redisstore")
	assert.Empty(t, out.String(), "nothing missing: nothing said")

	for range 9 {
		s.add("redis-server", "redis-server")
	}
	s.add("mosquitto", "mosquitto")
	s.report(&out, "redisstore")
	assert.Equal(t, "redisstore: mosquitto not found: 1 test skipped; install the Debian package mosquitto (apt-get install mosquitto) or run `bash .ci/run`\n"+
		"redisstore: redis-server not found: 9 tests skipped; install the Debian package redis-server (apt-get install redis-server) or run `bash .ci/run`\n",
		out.String())
}

func TestProgramCountsItsSkips(t *testing.T) {
	t.Setenv(RequireEnv, "")
	before := skipped.count("surely-not-installed-mqttguard-tool")
	t.Run("skips", func(t *testing.T) {
		Program(t, "surely-not-installed-mqttguard-tool", "nothing")
		t.Error("Program returned for a missing program")
	})
	assert.Equal(t, before+1, skipped.count("surely-not-installed-mqttguard-tool"))
	skipped.mu.Lock()
	delete(skipped.by, "surely-not-installed-mqttguard-tool") // this package's Main has nothing to say
	skipped.mu.Unlock()
}
