package mochiguard

import (
	"net"
	"syscall"
	"unsafe"
)

// unsentBytes is what the kernel holds in c's send queue, not yet
// acknowledged by the peer (data a subscriber has not read yet), and the
// size of that queue. ok is false when c is not a TCP connection (after
// unwrapping TLS and the packet validator).
func unsentBytes(c net.Conn) (n, size int, ok bool) {
	tc, isTCP := tcpConn(c)
	if !isTCP {
		return 0, 0, false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return 0, 0, false
	}
	var q int32
	cerr := rc.Control(func(fd uintptr) {
		_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&q)))
		var serr error
		size, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
		ok = errno == 0 && serr == nil
	})
	return int(q), size, ok && cerr == nil
}
