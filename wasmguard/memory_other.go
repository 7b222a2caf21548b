//go:build !linux

package wasmguard

import (
	"context"

	"github.com/tetratelabs/wazero/experimental"
)

// withMemory backs linear memory with heapMemory, which grows by
// doubling instead of wazero's append.
func withMemory(ctx context.Context) context.Context {
	return experimental.WithMemoryAllocator(ctx, experimental.MemoryAllocatorFunc(func(_, max uint64) experimental.LinearMemory {
		return &heapMemory{max: max}
	}))
}
