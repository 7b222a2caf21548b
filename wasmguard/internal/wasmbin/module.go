// Package wasmbin reads the parts of a WebAssembly binary that wasmguard
// must check before handing it to wazero (imports, tables, memories,
// exports), and rewrites its code so that every call is bounded: a fuel
// counter charged at every function entry and loop header, a call-depth
// counter kept by a wrapper around every function, and bulk memory
// operations charged by their length.
//
// It understands the WebAssembly 2.0 core features wasmguard enables
// (multi-value, sign extension, non-trapping conversions, bulk memory,
// mutable globals) and refuses everything else — SIMD, threads, tail
// calls, reference types, multiple memories, memory64 — rather than pass
// through code it cannot account for.
package wasmbin

import (
	"bytes"
	"errors"
	"fmt"
)

// Section identifiers.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
)

// External kinds in imports and exports.
const (
	kindFunc   = 0
	kindTable  = 1
	kindMemory = 2
	kindGlobal = 3
)

// FuncType is a function signature.
type FuncType struct {
	Params, Results []byte // value types
}

// Import is one imported function.
type Import struct {
	Module, Name string
	Type         uint32
}

// Limits are the min and (optional) max of a table or memory.
type Limits struct {
	Min    uint64
	Max    uint64
	HasMax bool
}

// Export is one export.
type Export struct {
	Name  string
	Kind  byte
	Index uint32
}

// Module is what wasmguard needs to know about a module before running
// it, plus the raw sections the rewriter needs.
type Module struct {
	Types     []FuncType
	Imports   []Import // functions only: other imports are refused
	Funcs     []uint32 // type index of each defined function
	Tables    []Limits
	Memories  []Limits
	Globals   int // defined globals
	Exports   []Export
	Start     int64 // -1 when there is none
	ElemCount int

	sections []section
}

type section struct {
	id   byte
	data []byte
}

// Error is a module wasmguard refuses, and why.
type Error struct{ Msg string }

func (e *Error) Error() string { return "wasm: " + e.Msg }

func errorf(format string, args ...any) error { return &Error{Msg: fmt.Sprintf(format, args...)} }

var magic = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// Parse reads a module's sections. It validates only what it needs to;
// wazero's own decoder validates the rest when the module is compiled.
func Parse(bin []byte) (*Module, error) {
	if !bytes.HasPrefix(bin, magic) {
		return nil, errorf("not a WebAssembly 1.0 binary (bad magic or version)")
	}
	m := &Module{Start: -1}
	r := &reader{b: bin, pos: len(magic)}
	lastID := byte(0)
	for r.pos < len(r.b) {
		id := r.byte()
		size := r.u32()
		if r.err != nil {
			return nil, r.err
		}
		if uint64(size) > uint64(len(r.b)-r.pos) {
			return nil, errorf("section %d claims %d bytes, %d remain", id, size, len(r.b)-r.pos)
		}
		data := r.b[r.pos : r.pos+int(size)]
		r.pos += int(size)
		if id != secCustom {
			if order(id) <= order(lastID) && lastID != 0 {
				return nil, errorf("section %d out of order or repeated", id)
			}
			lastID = id
		}
		m.sections = append(m.sections, section{id, data})
		if err := m.readSection(id, data); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// order is the position a section must take (the data count section
// comes between element and code).
func order(id byte) int {
	switch id {
	case secDataCount:
		return 10
	case secCode:
		return 11
	case secData:
		return 12
	}
	return int(id)
}

func (m *Module) readSection(id byte, data []byte) error {
	r := &reader{b: data}
	// Every vector entry takes at least one byte. Checked for all
	// sections, those read here and those only wazero reads, because
	// wazero allocates what a count claims before it reads the entries:
	// 6 bytes claiming 800 million data segments would take tens of GB.
	switch id {
	case secType, secImport, secFunction, secTable, secMemory, secGlobal, secExport, secElement, secCode, secData:
		probe := &reader{b: data}
		if n := probe.u32(); probe.err == nil && uint64(n) > uint64(len(data)) {
			return errorf("section %d claims %d entries in %d bytes", id, n, len(data))
		}
	}
	switch id {
	case secType:
		n := r.u32()
		for i := uint32(0); i < n && r.err == nil; i++ {
			if r.byte() != 0x60 {
				return errorf("type %d is not a function type", i)
			}
			var ft FuncType
			ft.Params = r.valTypes()
			ft.Results = r.valTypes()
			m.Types = append(m.Types, ft)
		}
	case secImport:
		n := r.u32()
		for i := uint32(0); i < n && r.err == nil; i++ {
			mod, name := r.name(), r.name()
			switch kind := r.byte(); kind {
			case kindFunc:
				m.Imports = append(m.Imports, Import{Module: mod, Name: name, Type: r.u32()})
			case kindTable:
				return errorf("imports a table (%s.%s); plugins may import only functions", mod, name)
			case kindMemory:
				return errorf("imports a memory (%s.%s); plugins must define their own", mod, name)
			case kindGlobal:
				return errorf("imports a global (%s.%s); plugins may import only functions", mod, name)
			default:
				return errorf("import %s.%s has unknown kind %d", mod, name, kind)
			}
		}
	case secFunction:
		n := r.u32()
		for i := uint32(0); i < n && r.err == nil; i++ {
			m.Funcs = append(m.Funcs, r.u32())
		}
	case secTable:
		n := r.u32()
		for i := uint32(0); i < n && r.err == nil; i++ {
			if rt := r.byte(); rt != 0x70 && rt != 0x6f {
				return errorf("table %d has unknown element type 0x%02x", i, rt)
			}
			m.Tables = append(m.Tables, r.limits())
		}
	case secMemory:
		n := r.u32()
		for i := uint32(0); i < n && r.err == nil; i++ {
			m.Memories = append(m.Memories, r.limits())
		}
	case secGlobal:
		m.Globals = int(r.u32())
		r.pos = len(r.b) // contents are copied, not interpreted
	case secExport:
		n := r.u32()
		for i := uint32(0); i < n && r.err == nil; i++ {
			m.Exports = append(m.Exports, Export{Name: r.name(), Kind: r.byte(), Index: r.u32()})
		}
	case secStart:
		m.Start = int64(r.u32())
	case secElement:
		m.ElemCount = int(r.u32())
		r.pos = len(r.b)
	default:
		r.pos = len(r.b)
	}
	if r.err != nil {
		return r.err
	}
	if r.pos != len(r.b) {
		return errorf("section %d has %d unread bytes", id, len(r.b)-r.pos)
	}
	return nil
}

// reader decodes the binary format's primitives, recording the first
// error.
type reader struct {
	b   []byte
	pos int
	err error
}

var errShort = errors.New("wasm: unexpected end of section")

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) byte() byte {
	if r.pos >= len(r.b) {
		r.fail(errShort)
		return 0
	}
	v := r.b[r.pos]
	r.pos++
	return v
}

func (r *reader) u64(bits uint) uint64 {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		if shift >= bits+7 {
			r.fail(errorf("LEB128 integer too long"))
			return 0
		}
		b := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint64(b&0x7f) << shift
		if b&0x80 == 0 {
			return v
		}
	}
}

func (r *reader) u32() uint32 { return uint32(r.u64(32)) }

// skipLEB moves past a LEB128 integer of at most maxBytes bytes.
func (r *reader) skipLEB(maxBytes int) {
	for i := 0; i < maxBytes; i++ {
		if r.byte()&0x80 == 0 || r.err != nil {
			return
		}
	}
	r.fail(errorf("LEB128 integer too long"))
}

func (r *reader) name() string {
	n := r.u32()
	if uint64(n) > uint64(len(r.b)-r.pos) {
		r.fail(errShort)
		return ""
	}
	s := string(r.b[r.pos : r.pos+int(n)])
	r.pos += int(n)
	return s
}

func (r *reader) valTypes() []byte {
	n := r.u32()
	if uint64(n) > uint64(len(r.b)-r.pos) {
		r.fail(errShort)
		return nil
	}
	v := append([]byte(nil), r.b[r.pos:r.pos+int(n)]...)
	r.pos += int(n)
	return v
}

func (r *reader) limits() Limits {
	flag := r.byte()
	switch flag {
	case 0:
		return Limits{Min: r.u64(32)}
	case 1:
		return Limits{Min: r.u64(32), Max: r.u64(32), HasMax: true}
	}
	r.fail(errorf("limits flag 0x%02x (shared or 64-bit memory) is not supported", flag))
	return Limits{}
}

// FuncType returns the signature of function index fi (imports first).
func (m *Module) FuncType(fi uint32) (FuncType, bool) {
	var ti uint32
	switch {
	case int(fi) < len(m.Imports):
		ti = m.Imports[fi].Type
	case int(fi) < len(m.Imports)+len(m.Funcs):
		ti = m.Funcs[int(fi)-len(m.Imports)]
	default:
		return FuncType{}, false
	}
	if int(ti) >= len(m.Types) {
		return FuncType{}, false
	}
	return m.Types[ti], true
}
