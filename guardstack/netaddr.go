package guardstack

import (
	"net"
	"net/netip"
)

func netipAddr(a net.Addr) (netip.Addr, bool) {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, ok := netip.AddrFromSlice(ta.IP)
		return ip.Unmap(), ok
	}
	ap, err := netip.ParseAddrPort(a.String())
	return ap.Addr().Unmap(), err == nil
}

// SplitHostPort is net.SplitHostPort, with "" for "".
func SplitHostPort(a string) (host, port string, err error) {
	if a == "" {
		return "", "", nil
	}
	return net.SplitHostPort(a)
}
