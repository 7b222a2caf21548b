package wasmguard

// heapMemory is linear memory on the Go heap, grown by doubling; the
// fallback where address space cannot be reserved.
type heapMemory struct {
	buf []byte
	max uint64
}

func (m *heapMemory) Reallocate(size uint64) []byte {
	if size > m.max {
		return nil
	}
	if size > uint64(cap(m.buf)) {
		nb := make([]byte, size, min(max(size, 2*uint64(cap(m.buf))), m.max))
		copy(nb, m.buf)
		m.buf = nb
	}
	m.buf = m.buf[:size]
	return m.buf
}

func (m *heapMemory) Free() { m.buf = nil }
