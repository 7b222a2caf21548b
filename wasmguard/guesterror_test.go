package wasmguard

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mqttguard/mqttguard/internal/wasmbuild"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A plugin that refuses its configuration says why, first and on one
// line; the runtime's stack trace stays in the wrapped error, out of the
// operator's terminal and the reload's JSON.
func TestLoadErrorLeadsWithThePluginsMessage(t *testing.T) {
	_, err := Load(context.Background(), wasmbuild.Build(t, "testdata/goguest"), Limits{MaxInstances: 1},
		WithName("goguest"), WithConfig([]byte("refuse")), WithCacheDir(wasmbuild.CacheDir()))
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "wasmguard: plugin goguest does not instantiate: panic: goguest: configuration: refused ("), "%s", err)
	assert.NotContains(t, err.Error(), "\n", "one line")
	kept := false
	for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
		kept = kept || strings.Contains(e.Error(), "wasm stack trace")
	}
	assert.True(t, kept, "the trace is kept in a wrapped error")
}
