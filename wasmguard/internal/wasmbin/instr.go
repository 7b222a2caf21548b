package wasmbin

// instr is one decoded instruction of a function body.
type instr struct {
	start, end int    // byte range in the body
	op         byte   // opcode (0xfc for the misc prefix)
	sub        uint32 // sub-opcode after 0xfc
	index      uint32 // function index of a call
}

// Opcodes the rewriter looks at.
const (
	opUnreachable = 0x00
	opBlock       = 0x02
	opLoop        = 0x03
	opIf          = 0x04
	opElse        = 0x05
	opEnd         = 0x0b
	opCall        = 0x10
	opCallIndir   = 0x11
	opMemoryGrow  = 0x40
	opPrefixMisc  = 0xfc
)

// Misc sub-opcodes of bulk memory.
const (
	subMemoryInit = 8
	subMemoryCopy = 10
	subMemoryFill = 11
)

// next decodes the instruction at r.pos.
func (r *reader) next() instr {
	in := instr{start: r.pos}
	op := r.byte()
	in.op = op
	switch {
	case op == 0x00, op == 0x01, op == opElse, op == opEnd, op == 0x0f, op == 0x1a, op == 0x1b:
		// unreachable, nop, else, end, return, drop, select
	case op == opBlock || op == opLoop || op == opIf:
		r.blockType()
	case op == 0x0c || op == 0x0d: // br, br_if
		r.u32()
	case op == 0x0e: // br_table
		n := r.u32()
		for i := uint32(0); i <= n && r.err == nil; i++ {
			r.u32()
		}
	case op == opCall:
		in.index = r.u32()
	case op == 0x11: // call_indirect
		r.u32()
		if t := r.u32(); t != 0 {
			r.fail(errorf("call_indirect on table %d (only one table is allowed)", t))
		}
	case op >= 0x20 && op <= 0x24: // local.get/set/tee, global.get/set
		r.u32()
	case op >= 0x28 && op <= 0x3e: // loads and stores: memarg
		if align := r.u32(); align&0x40 != 0 {
			r.fail(errorf("a memory index in a memarg (multiple memories) is not supported"))
		}
		r.u32()
	case op == 0x3f || op == opMemoryGrow:
		if r.byte() != 0 {
			r.fail(errorf("memory.size/grow on a memory other than 0"))
		}
	case op == 0x41: // i32.const
		r.skipLEB(5)
	case op == 0x42: // i64.const
		r.skipLEB(10)
	case op == 0x43: // f32.const
		r.pos += 4
	case op == 0x44: // f64.const
		r.pos += 8
	case op >= 0x45 && op <= 0xc4: // numeric instructions, sign extension
	case op == opPrefixMisc:
		in.sub = r.u32()
		switch in.sub {
		case 0, 1, 2, 3, 4, 5, 6, 7: // non-trapping float-to-int conversions
		case subMemoryInit:
			r.u32()
			if r.byte() != 0 {
				r.fail(errorf("memory.init on a memory other than 0"))
			}
		case 9: // data.drop
			r.u32()
		case subMemoryCopy:
			if dst, src := r.byte(), r.byte(); dst != 0 || src != 0 {
				r.fail(errorf("memory.copy between memories other than 0"))
			}
		case subMemoryFill:
			if r.byte() != 0 {
				r.fail(errorf("memory.fill on a memory other than 0"))
			}
		case 12, 14: // table.init, table.copy: two indices
			r.u32()
			r.u32()
		case 13: // elem.drop
			r.u32()
		default:
			r.fail(errorf("instruction 0xfc %d (reference types) is not supported", in.sub))
		}
	default:
		r.fail(errorf("instruction 0x%02x is not supported (SIMD, threads, tail calls, exceptions and reference types are refused)", op))
	}
	if r.pos > len(r.b) {
		r.fail(errShort)
	}
	in.end = r.pos
	return in
}

// blockType skips a block type: empty (0x40), a value type, or a type
// index (a signed 33-bit LEB128).
func (r *reader) blockType() {
	if r.pos >= len(r.b) {
		r.fail(errShort)
		return
	}
	switch b := r.b[r.pos]; b {
	case 0x40, 0x7f, 0x7e, 0x7d, 0x7c:
		r.pos++
	default:
		r.skipLEB(5)
	}
}

// weight is what an instruction costs in fuel, beyond bulk memory
// operations, which are charged by their length at run time.
func (in *instr) weight() int64 {
	switch in.op {
	case opMemoryGrow:
		return 256 // it may have the host map and zero memory
	case opCall, opCallIndir:
		return 10 // the callee's wrapper and fuel check come with it
	}
	return 1
}

// boundary reports whether control can enter the code right after in
// other than by falling through to it.
func (in *instr) boundary() bool {
	switch in.op {
	case opLoop, opIf, opElse, opEnd:
		return true
	}
	return false
}

func (in *instr) bulk() bool {
	return in.op == opPrefixMisc && (in.sub == subMemoryFill || in.sub == subMemoryCopy || in.sub == subMemoryInit)
}
