package wasmbin

import "strings"

// Names under which the instrumented module exports its counters.
const (
	FuelExport  = "__mqttguard_fuel"
	DepthExport = "__mqttguard_depth"
)

// Options parameterise the instrumentation.
type Options struct {
	// InitFuel is the fuel the module starts with, which its start
	// function and _initialize run on.
	InitFuel int64
	// MaxDepth is the deepest call nesting allowed; one more traps.
	MaxDepth int32
	// BulkShift charges bulk memory operations one unit per 2^BulkShift
	// bytes.
	BulkShift uint
	// ImportCallWeight is what a call to an imported (host) function
	// weighs (default 200). A host call leaves compiled code for Go,
	// which costs about as much as 100–200 guest instructions: weighed
	// like a guest call, a loop of host calls would run ten times longer
	// than its fuel says.
	ImportCallWeight int64
}

// defaultImportCallWeight: a host call that does next to nothing (a log
// line the host drops) measured ~100 ns on a 2-core VM, where a unit of
// fuel is ~0.6 ns of guest code.
const defaultImportCallWeight = 200

// Instrument rewrites m so that every call is bounded, and returns the
// new binary:
//
//   - A mutable i64 global, exported as FuelExport, is charged at the
//     start of every metered block (a straight-line run of code entered
//     only at its start: see body) with the weight of its instructions,
//     so the fuel spent bounds the instructions executed, loops,
//     loop-free call trees and recursion alike. When the fuel goes below
//     zero the module traps. Charging per block rather than per function
//     matters for Go guests, whose every function is one big loop over a
//     br_table: charging the whole body on each turn overcharged them
//     10–30 times.
//   - Bulk memory operations (memory.fill, memory.copy, memory.init) are
//     charged by their length before they run, and calls to imported
//     (host) functions by ImportCallWeight.
//   - Every defined function gets a wrapper that counts the call depth in
//     a mutable i32 global (exported as DepthExport) and traps beyond
//     MaxDepth; calls, call_indirect through the table, exports and the
//     start function all go through the wrappers. This bounds the native
//     stack a recursive guest can make the host allocate.
//
// Custom sections (debug information, whose offsets the rewrite would
// invalidate) are dropped.
func Instrument(m *Module, opt Options) ([]byte, error) {
	for _, e := range m.Exports {
		if strings.HasPrefix(e.Name, "__mqttguard") {
			return nil, errorf("export %q uses a name reserved for the host", e.Name)
		}
	}
	for i, ft := range m.Funcs {
		if int(ft) >= len(m.Types) {
			return nil, errorf("function %d has unknown type %d", i, ft)
		}
	}
	w := &rewriter{m: m, opt: opt, imports: uint32(len(m.Imports)), defined: uint32(len(m.Funcs)),
		fuel: uint32(m.Globals), depth: uint32(m.Globals) + 1}
	return w.run()
}

type rewriter struct {
	m                *Module
	opt              Options
	imports, defined uint32
	fuel, depth      uint32 // global indices
	out              []byte
}

// weight is what in costs: a call to an import ImportCallWeight, other
// instructions their own weight.
func (w *rewriter) weight(in *instr) int64 {
	if in.op == opCall && in.index < w.imports {
		if w.opt.ImportCallWeight > 0 {
			return w.opt.ImportCallWeight
		}
		return defaultImportCallWeight
	}
	return in.weight()
}

// wrapper returns the index that calls to function fi go to.
func (w *rewriter) wrapper(fi uint32) uint32 {
	if fi < w.imports || fi >= w.imports+w.defined {
		return fi // host functions are not wrapped
	}
	return fi + w.defined
}

func (w *rewriter) run() ([]byte, error) {
	w.out = append([]byte(nil), magic...)
	sawGlobal, sawExport := false, false
	for _, s := range w.m.sections {
		if !sawGlobal && order(s.id) > secGlobal {
			w.section(secGlobal, w.globals(nil))
			sawGlobal = true
		}
		if !sawExport && order(s.id) > secExport {
			w.section(secExport, w.exports())
			sawExport = true
		}
		switch s.id {
		case secCustom:
			// dropped: see Instrument
		case secFunction:
			w.section(secFunction, w.functions())
		case secGlobal:
			w.section(secGlobal, w.globals(s.data))
			sawGlobal = true
		case secExport:
			w.section(secExport, w.exports())
			sawExport = true
		case secStart:
			w.section(secStart, uleb(nil, uint64(w.wrapper(uint32(w.m.Start)))))
		case secElement:
			data, err := w.elements(s.data)
			if err != nil {
				return nil, err
			}
			w.section(secElement, data)
		case secCode:
			data, err := w.code(s.data)
			if err != nil {
				return nil, err
			}
			w.section(secCode, data)
		default:
			w.section(s.id, s.data)
		}
	}
	if !sawGlobal {
		w.section(secGlobal, w.globals(nil))
	}
	if !sawExport {
		w.section(secExport, w.exports())
	}
	return w.out, nil
}

func (w *rewriter) section(id byte, data []byte) {
	w.out = append(w.out, id)
	w.out = uleb(w.out, uint64(len(data)))
	w.out = append(w.out, data...)
}

// functions declares the wrappers after the originals, same types.
func (w *rewriter) functions() []byte {
	out := uleb(nil, uint64(2*w.defined))
	for pass := 0; pass < 2; pass++ {
		for _, t := range w.m.Funcs {
			out = uleb(out, uint64(t))
		}
	}
	return out
}

// globals appends the fuel and depth counters to the module's globals.
func (w *rewriter) globals(old []byte) []byte {
	r := &reader{b: old}
	var entries []byte
	if len(old) > 0 {
		r.u32()
		entries = old[r.pos:]
	}
	out := uleb(nil, uint64(w.m.Globals+2))
	out = append(out, entries...)
	out = append(out, 0x7e, 0x01, 0x42) // i64, mutable, i64.const
	out = sleb(out, w.opt.InitFuel)
	out = append(out, 0x0b)
	out = append(out, 0x7f, 0x01, 0x41, 0x00, 0x0b) // i32, mutable, i32.const 0
	return out
}

// exports redirects function exports to their wrappers and adds the
// counters.
func (w *rewriter) exports() []byte {
	out := uleb(nil, uint64(len(w.m.Exports)+2))
	for _, e := range w.m.Exports {
		out = name(out, e.Name)
		out = append(out, e.Kind)
		idx := e.Index
		if e.Kind == kindFunc {
			idx = w.wrapper(idx)
		}
		out = uleb(out, uint64(idx))
	}
	out = name(out, FuelExport)
	out = append(out, kindGlobal)
	out = uleb(out, uint64(w.fuel))
	out = name(out, DepthExport)
	out = append(out, kindGlobal)
	out = uleb(out, uint64(w.depth))
	return out
}

// elements redirects the function indices of element segments (what
// call_indirect reaches) to the wrappers.
func (w *rewriter) elements(data []byte) ([]byte, error) {
	r := &reader{b: data}
	n := r.u32()
	out := uleb(nil, uint64(n))
	for i := uint32(0); i < n && r.err == nil; i++ {
		start := r.pos
		flags := r.u32()
		switch flags {
		case 0: // active, table 0: offset expr, vec(funcidx)
			r.constExpr()
		case 1, 3: // passive or declarative: elemkind, vec(funcidx)
			if r.byte() != 0x00 {
				return nil, errorf("element segment %d has an unknown element kind", i)
			}
		case 2: // active, explicit table: tableidx, offset expr, elemkind, vec(funcidx)
			r.u32()
			r.constExpr()
			if r.byte() != 0x00 {
				return nil, errorf("element segment %d has an unknown element kind", i)
			}
		default:
			return nil, errorf("element segment %d uses expressions (reference types), which are not supported", i)
		}
		out = append(out, data[start:r.pos]...)
		cnt := r.u32()
		out = uleb(out, uint64(cnt))
		for j := uint32(0); j < cnt && r.err == nil; j++ {
			out = uleb(out, uint64(w.wrapper(r.u32())))
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return out, nil
}

// constExpr skips a constant expression up to and including its end.
func (r *reader) constExpr() {
	for r.err == nil {
		in := r.next()
		if in.op == opEnd {
			return
		}
	}
}

// code rewrites every function body and appends the wrappers.
func (w *rewriter) code(data []byte) ([]byte, error) {
	r := &reader{b: data}
	n := r.u32()
	if r.err != nil || n != w.defined {
		return nil, errorf("the code section has %d bodies for %d functions", n, w.defined)
	}
	out := uleb(nil, uint64(2*n))
	for i := uint32(0); i < n; i++ {
		size := r.u32()
		if r.err != nil || uint64(size) > uint64(len(r.b)-r.pos) {
			return nil, errorf("function %d: body size runs past the code section", i)
		}
		body := r.b[r.pos : r.pos+int(size)]
		r.pos += int(size)
		ft := w.m.Types[w.m.Funcs[i]]
		nb, err := w.body(body, len(ft.Params))
		if err != nil {
			return nil, errorf("function %d: %v", w.imports+i, err)
		}
		out = uleb(out, uint64(len(nb)))
		out = append(out, nb...)
	}
	for i := uint32(0); i < n; i++ {
		wb := w.wrapperBody(w.imports+i, len(w.m.Types[w.m.Funcs[i]].Params))
		out = uleb(out, uint64(len(wb)))
		out = append(out, wb...)
	}
	return out, nil
}

// body rewrites one function body.
func (w *rewriter) body(body []byte, params int) ([]byte, error) {
	r := &reader{b: body}
	groups := r.u32()
	afterGroups := r.pos
	locals := uint64(params)
	for g := uint32(0); g < groups && r.err == nil; g++ {
		locals += uint64(r.u32())
		r.byte()
	}
	if r.err != nil {
		return nil, r.err
	}
	localsEnd := r.pos

	// Pass 1: decode, and check that the blocks nest.
	var ins []instr
	depth := 0
	hasBulk := false
	for r.pos < len(r.b) {
		in := r.next()
		if r.err != nil {
			return nil, r.err
		}
		switch in.op {
		case opBlock, opIf, opLoop:
			depth++
		case opEnd:
			depth--
			if depth < 0 && r.pos < len(r.b) {
				return nil, errorf("body ends before its last instruction")
			}
		}
		if in.bulk() {
			hasBulk = true
		}
		ins = append(ins, in)
	}
	if len(ins) == 0 || ins[len(ins)-1].op != opEnd || depth != -1 {
		return nil, errorf("body does not end where its blocks do")
	}
	// Metered blocks: straight-line runs that control enters only at
	// their start — the function's start and the instruction after each
	// loop, if, else and end (the targets of branches). Each is charged
	// on entry with the weights of all its instructions, the control
	// instruction that ends it included, so every one costs at least 1
	// and every loop iteration pays. A branch out of the middle has paid
	// for the rest: an overcharge, never an undercharge.
	cost := make([]int64, 0, 16) // cost of each metered block, in order
	var run int64
	for i := range ins {
		run += w.weight(&ins[i])
		if ins[i].boundary() || i == len(ins)-1 {
			cost = append(cost, run)
			run = 0
		}
	}

	// Pass 2: emit.
	out := make([]byte, 0, len(body)+len(body)/2+32)
	tmp := uint32(0)
	if hasBulk {
		if locals >= 50000 {
			return nil, errorf("too many locals")
		}
		tmp = uint32(locals)
		out = uleb(out, uint64(groups)+1)
		out = append(out, body[afterGroups:localsEnd]...)
		out = append(out, 0x01, 0x7f) // one more i32 local
	} else {
		out = append(out, body[:localsEnd]...)
	}
	out = w.charge(out, cost[0])
	next := 1
	for i, in := range ins {
		switch {
		case in.op == opCall:
			out = append(out, opCall)
			out = uleb(out, uint64(w.wrapper(in.index)))
		case in.bulk():
			out = append(out, 0x22) // local.tee tmp: the length stays on the stack
			out = uleb(out, uint64(tmp))
			out = append(out, 0x23) // global.get fuel
			out = uleb(out, uint64(w.fuel))
			out = append(out, 0x20) // local.get tmp
			out = uleb(out, uint64(tmp))
			out = append(out, 0xad, 0x42) // i64.extend_i32_u, i64.const shift
			out = sleb(out, int64(w.opt.BulkShift))
			out = append(out, 0x88, 0x7d, 0x24) // i64.shr_u, i64.sub, global.set fuel
			out = uleb(out, uint64(w.fuel))
			out = w.check(out)
			out = append(out, body[in.start:in.end]...)
		default:
			out = append(out, body[in.start:in.end]...)
		}
		if in.boundary() && i < len(ins)-1 {
			out = w.charge(out, cost[next])
			next++
		}
	}
	return out, nil
}

// charge subtracts cost from the fuel and traps if it is spent.
func (w *rewriter) charge(out []byte, cost int64) []byte {
	out = append(out, 0x23) // global.get fuel
	out = uleb(out, uint64(w.fuel))
	out = append(out, 0x42) // i64.const cost
	out = sleb(out, cost)
	out = append(out, 0x7d, 0x24) // i64.sub, global.set fuel
	out = uleb(out, uint64(w.fuel))
	return w.check(out)
}

// check traps when the fuel is below zero.
func (w *rewriter) check(out []byte) []byte {
	out = append(out, 0x23) // global.get fuel
	out = uleb(out, uint64(w.fuel))
	// i64.const 0, i64.lt_s, if (empty), unreachable, end
	return append(out, 0x42, 0x00, 0x53, 0x04, 0x40, opUnreachable, opEnd)
}

// wrapperBody counts the call depth around a call to function fi.
func (w *rewriter) wrapperBody(fi uint32, params int) []byte {
	out := []byte{0x00} // no locals
	d := uleb(nil, uint64(w.depth))
	out = append(out, 0x23)
	out = append(out, d...)
	out = append(out, 0x41, 0x01, 0x6a, 0x24) // i32.const 1, i32.add, global.set
	out = append(out, d...)
	out = append(out, 0x23)
	out = append(out, d...)
	out = append(out, 0x41) // i32.const max, i32.gt_u, if, unreachable, end
	out = sleb(out, int64(w.opt.MaxDepth))
	out = append(out, 0x4b, 0x04, 0x40, opUnreachable, opEnd)
	for p := 0; p < params; p++ {
		out = append(out, 0x20) // local.get p
		out = uleb(out, uint64(p))
	}
	out = append(out, opCall)
	out = uleb(out, uint64(fi))
	out = append(out, 0x23)
	out = append(out, d...)
	out = append(out, 0x41, 0x01, 0x6b, 0x24) // i32.const 1, i32.sub, global.set
	out = append(out, d...)
	return append(out, opEnd)
}

func uleb(out []byte, v uint64) []byte {
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b |= 0x80
		}
		out = append(out, b)
		if v == 0 {
			return out
		}
	}
}

func sleb(out []byte, v int64) []byte {
	for {
		b := byte(v & 0x7f)
		v >>= 7
		done := (v == 0 && b&0x40 == 0) || (v == -1 && b&0x40 != 0)
		if !done {
			b |= 0x80
		}
		out = append(out, b)
		if done {
			return out
		}
	}
}

func name(out []byte, s string) []byte {
	out = uleb(out, uint64(len(s)))
	return append(out, s...)
}
