package guest

import (
	"fmt"
	"log/slog"
	"unsafe"

	"github.com/mqttguard/mqttguard/reason"
)

// buffer is the scratch buffer the host writes events into; a package
// variable, so the Go garbage collector keeps it (and never moves it).
var buffer []byte

// maxBuffer bounds what a host can make the guest allocate.
const maxBuffer = 64 << 20

//lint:ignore U1000 the host looks for this export: //go:wasmexport exports it in the wasip1 build only, and staticcheck checks the native one
//go:wasmexport mqttguard_abi_v1
func abiV1() {}

//go:wasmexport mqttguard_buffer
func bufferFor(size int32) int32 {
	if size < 0 || size > maxBuffer {
		return 0 // the host treats 0 as a refusal
	}
	if int(size) > len(buffer) {
		buffer = make([]byte, size)
	}
	if len(buffer) == 0 {
		buffer = make([]byte, 1)
	}
	return int32(uintptr(unsafe.Pointer(&buffer[0])))
}

func record(n int32) []byte {
	if n < 0 || int(n) > len(buffer) {
		return nil
	}
	return buffer[:n]
}

// HandleConnect decodes the event on_connect was called with and returns
// f's verdict as the i32 the hook returns:
//
//	//go:wasmexport on_connect
//	func onConnect(n int32) int32 { return guest.HandleConnect(n, check) }
//
// An event it cannot decode is denied with 0x80 and logged.
//
// The *Connect is reused by the next call: keep its fields, not the
// pointer.
func HandleConnect(n int32, f func(*Connect) Verdict) int32 {
	var err error
	if connectEvent, err = DecodeConnect(record(n)); err != nil {
		return undecodable(err)
	}
	return int32(f(&connectEvent))
}

// HandleSubscribe is HandleConnect for on_subscribe.
func HandleSubscribe(n int32, f func(*Subscribe) Verdict) int32 {
	var err error
	if subscribeEvent, err = DecodeSubscribe(record(n)); err != nil {
		return undecodable(err)
	}
	return int32(f(&subscribeEvent))
}

// HandlePublish is HandleConnect for on_publish. The payload is valid
// only until f returns (it is the host's buffer); copy what you keep.
func HandlePublish(n int32, f func(*Publish) Verdict) int32 {
	var err error
	if publishEvent, err = DecodePublish(record(n)); err != nil {
		return undecodable(err)
	}
	return int32(f(&publishEvent))
}

// The events the Handle functions pass, reused: handing f a pointer to a
// local would move it to the heap on every call, and a guest runs one
// call at a time.
var (
	connectEvent   Connect
	subscribeEvent Subscribe
	publishEvent   Publish
)

// Logf is Log with fmt.Sprintf.
func Logf(level slog.Level, format string, args ...any) {
	Log(level, fmt.Sprintf(format, args...))
}

func undecodable(err error) int32 {
	Log(slog.LevelError, err.Error())
	return int32(Deny(reason.UnspecifiedError))
}
