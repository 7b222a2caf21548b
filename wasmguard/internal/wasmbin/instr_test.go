package wasmbin

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// Bulk memory instructions decode with both of their memory indices read;
// an index other than 0 (multiple memories) refuses the module, in
// either operand of memory.copy.
func TestBulkMemoryIndices(t *testing.T) {
	for _, c := range []struct {
		name string
		code []byte
		ok   bool
	}{
		{"memory.copy 0 0", []byte{0xfc, subMemoryCopy, 0, 0}, true},
		{"memory.copy 1 0", []byte{0xfc, subMemoryCopy, 1, 0}, false},
		{"memory.copy 0 1", []byte{0xfc, subMemoryCopy, 0, 1}, false},
		{"memory.copy short", []byte{0xfc, subMemoryCopy, 0}, false},
		{"memory.fill 0", []byte{0xfc, subMemoryFill, 0}, true},
		{"memory.fill 1", []byte{0xfc, subMemoryFill, 1}, false},
		{"memory.init 3 0", []byte{0xfc, subMemoryInit, 3, 0}, true},
		{"memory.init 3 1", []byte{0xfc, subMemoryInit, 3, 1}, false},
	} {
		r := &reader{b: c.code}
		in := r.next()
		if !c.ok {
			assert.Error(t, r.err, c.name)
			continue
		}
		if assert.NoError(t, r.err, c.name) {
			assert.True(t, in.bulk(), c.name)
			assert.Equal(t, len(c.code), in.end, "%s: every byte read", c.name)
		}
	}
}
