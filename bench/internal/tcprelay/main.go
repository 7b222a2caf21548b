// Command tcprelay copies bytes between each client and its own
// connection to -upstream and does nothing else: the floor of what any
// proxy costs, for the proxy benchmarks to measure ours against. It
// prints its address and serves until killed.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	upstream := flag.String("upstream", "", "host:port")
	flag.Parse()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(l.Addr().String())
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", *upstream)
		if err != nil {
			c.Close()
			continue
		}
		go func() { io.Copy(u, c); u.Close() }()
		go func() { io.Copy(c, u); c.Close() }()
	}
}
