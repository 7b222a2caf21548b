//go:build linux

package wasmguard

import (
	"context"
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// withMemory makes wazero back each instance's linear memory with an
// anonymous mapping of the full limit, reserved but not committed: the
// kernel supplies pages as the guest touches them. Growing is then free
// — wazero's own memory is a Go slice that append copies on every grow
// (a guest growing page by page to 16 MiB copied about 200 MB and held
// the garbage collector off for half a second) — and linear memory stays
// off the Go heap, where the collector would zero and account it.
func withMemory(ctx context.Context) context.Context {
	return experimental.WithMemoryAllocator(ctx, experimental.MemoryAllocatorFunc(allocate))
}

type mappedMemory struct{ buf []byte }

func allocate(_, max uint64) experimental.LinearMemory {
	b, err := syscall.Mmap(-1, 0, int(max), syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
	if err != nil {
		return &heapMemory{max: max} // no address space left: fall back to the heap
	}
	return &mappedMemory{buf: b}
}

func (m *mappedMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.buf)) {
		return nil
	}
	return m.buf[:size:size]
}

// Free runs when wazero closes the instance, which the pool does only
// when no call is running on it.
func (m *mappedMemory) Free() {
	if m.buf != nil {
		syscall.Munmap(m.buf)
		m.buf = nil
	}
}
