package wasmguard

import (
	"context"
	"strings"
	"testing"

	"github.com/mqttguard/mqttguard/internal/wasmbuild"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A plugin that refuses its configuration says why, and that line comes
// first: the runtime's stack trace follows it, not the other way round.
func TestLoadErrorLeadsWithThePluginsMessage(t *testing.T) {
	_, err := Load(context.Background(), wasmbuild.Build(t, "testdata/goguest"), Limits{MaxInstances: 1},
		WithName("goguest"), WithConfig([]byte("refuse")), WithCacheDir(wasmbuild.CacheDir()))
	require.Error(t, err)
	first, rest, _ := strings.Cut(err.Error(), "\n")
	assert.Equal(t, "wasmguard: plugin goguest does not instantiate: panic: goguest: configuration: refused", first)
	assert.Contains(t, rest, "wasm stack trace", "the trace is kept, after the message")
}
