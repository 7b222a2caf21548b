//go:build !linux

package mochiguard

import "net"

// unsentBytes is not known here: every subscriber whose queue stays
// full for a wait is taken to be slow.
func unsentBytes(net.Conn) (n, size int, ok bool) { return 0, 0, false }
