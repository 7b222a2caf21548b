package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/packets"
	"github.com/mqttguard/mqttguard/passwd"
)

// BenchmarkGuessingFlood: wrong-password CONNECTs from four addresses
// (127.0.0.2 … 127.0.0.5) at 0×, 1×, 2× and 4× the default per-address
// connection limit (10 a second each), while 50 devices from 127.0.0.1
// reconnect every second with their right passwords. It reports the
// devices' CONNACK latency (p50, p99 and how many got none within 5 s or
// were refused), the broker's CPU, and how many guesses a second were
// verified (each a password hash), for:
//
//   - mqttguard: the example broker, its defaults for password checks
//     (a pool of GOMAXPROCS hashes, a 5-minute cache of successes, the
//     failure gate: 5 free, then turns from 250 ms to 10 s, a ban after
//     50), with passwords hashed at 210,000 iterations (its default and
//     mosquitto 2.1's);
//   - mosquitto-210k: mosquitto 2.0 with the same password file;
//   - mosquitto-101: mosquitto 2.0 with its own default, 101 iterations
//     (cheap for the guesser and for the devices alike).
//
// The devices connected once before the measurement (the cold start of
// 50 hashes at once is not what it measures); mosquitto has no cache,
// so each of its reconnects is a hash. One run is 8 s of the scenario;
// bench/load runs it.
func BenchmarkGuessingFlood(b *testing.B) {
	for _, impl := range []struct {
		name       string
		iterations int
	}{{"mqttguard", 210_000}, {"mosquitto-210k", 210_000}, {"mosquitto-101", 101}} {
		for _, level := range []int{0, 1, 2, 4} {
			b.Run(fmt.Sprintf("impl=%s/attack=%dx", impl.name, level), func(b *testing.B) {
				for range b.N {
					dir := b.TempDir()
					writeGuessingFiles(b, dir, impl.iterations)
					if impl.name == "mqttguard" {
						guessingFlood(b, guardServerIn(b, dir, false, ""), level, 4)
					} else {
						guessingFlood(b, mosquittoIn(b, dir, true), level, 5)
					}
				}
			})
		}
	}
}

const (
	guessDevices     = 50
	guessAddrs       = 4
	guessPerAddrRate = 10 // the example broker's ip_connections_per_second
	guessFor         = 8 * time.Second
	guessTimeout     = 5 * time.Second
)

// guessCodes counts the guessers' CONNACK codes (7: no answer).
var guessCodes [8]atomic.Int64

var hashes sync.Map // iterations → the hash of "device-pw"

// writeGuessingFiles writes the devices' accounts (dev-0 …) with
// passwords hashed at the given iterations. They share one password and
// so one hash: the cost of a check is the same, and hashing 50 times at
// 210,000 iterations would take the benchmark seconds per run.
func writeGuessingFiles(b *testing.B, dir string, iterations int) {
	h, ok := hashes.Load(iterations)
	if !ok {
		hash, err := passwd.HashIterations("device-pw", iterations)
		if err != nil {
			b.Fatal(err)
		}
		h, _ = hashes.LoadOrStore(iterations, hash)
	}
	var lines strings.Builder
	for i := range guessDevices {
		fmt.Fprintf(&lines, "dev-%d:%s\n", i, h)
	}
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte(lines.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "acl"), []byte("pattern write sensors/%u/#\n"), 0o600); err != nil {
		b.Fatal(err)
	}
}

// guessingFlood runs the scenario against p, whose CONNACK for a wrong
// password is the MQTT 3.1.1 code wrongPassword (mqttguard: 4, bad
// username or password; mosquitto: 5, not authorized).
func guessingFlood(b *testing.B, p *process, level int, wrongPassword byte) {
	// The devices have connected once before (their first CONNECT is a
	// hash each, 50 at once: seconds of a cold start, not what this
	// measures).
	var warm sync.WaitGroup
	for d := range guessDevices {
		warm.Add(1)
		go func() {
			defer warm.Done()
			user := fmt.Sprintf("dev-%d", d)
			for range 3 {
				if _, code, err := connack("127.0.0.1", p.addr, user, user, "device-pw"); err == nil && code == 0 {
					return
				}
			}
		}()
	}
	warm.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), guessFor)
	defer cancel()
	var wg sync.WaitGroup
	var guesses, guessAnswered atomic.Int64
	for a := range guessAddrs * min(level, 1) {
		from := fmt.Sprintf("127.0.0.%d", 2+a)
		rate := level * guessPerAddrRate
		wg.Add(1)
		go func() { // one address: a CONNECT every 1/rate s, each on its own connection
			defer wg.Done()
			tick := time.NewTicker(time.Second / time.Duration(rate))
			defer tick.Stop()
			var inflight sync.WaitGroup
			defer inflight.Wait()
			sem := make(chan struct{}, 256) // a guesser's sockets at once
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				select {
				case sem <- struct{}{}:
				default:
					continue // all its sockets wait: this tick is skipped
				}
				guesses.Add(1)
				inflight.Add(1)
				go func() {
					defer inflight.Done()
					defer func() { <-sem }()
					user := fmt.Sprintf("dev-%d", i%guessDevices)
					if _, code, err := connack(from, p.addr, "g"+from+fmt.Sprint(i), user, fmt.Sprint("guess-", i)); err == nil {
						guessAnswered.Add(1)
						guessCodes[code&7].Add(1)
					} else {
						guessCodes[7].Add(1)
					}
				}()
			}
		}()
	}

	cpu0, wall0 := cpuTime(p.pid), time.Now()
	var mu sync.Mutex
	var lat []time.Duration
	var failed int
	for d := range guessDevices {
		wg.Add(1)
		go func() { // a device: connect, disconnect, once a second
			defer wg.Done()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			user := fmt.Sprintf("dev-%d", d)
			for {
				took, code, err := connack("127.0.0.1", p.addr, user, user, "device-pw")
				mu.Lock()
				if err != nil || code != 0 {
					failed++
					took = guessTimeout
				}
				lat = append(lat, took)
				mu.Unlock()
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	wg.Wait()
	cpu := cpuTime(p.pid) - cpu0
	wall := time.Since(wall0)

	slices.Sort(lat)
	pct := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(failed), "refused-or-late")
	b.ReportMetric(float64(len(lat)), "connects")
	b.ReportMetric(cpu.Seconds()/wall.Seconds(), "broker-cores")
	var codes [8]int64
	for i := range guessCodes {
		codes[i] = guessCodes[i].Swap(0)
	}
	b.ReportMetric(float64(codes[wrongPassword])/wall.Seconds(), "guesses-verified/s")
	b.ReportMetric(float64(guesses.Load())/wall.Seconds(), "guesses/s")
	b.ReportMetric(float64(guessAnswered.Load())/wall.Seconds(), "answered/s")
}

// connack opens a connection from the local address from, sends an
// MQTT 3.1.1 CONNECT and returns how long the CONNACK took and its code.
func connack(from, addr, id, user, pass string) (time.Duration, byte, error) {
	start := time.Now()
	d := net.Dialer{Timeout: guessTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	c.SetDeadline(start.Add(guessTimeout))
	cn := packets.Connect{ProtocolName: []byte("MQTT"), Level: packets.V311, CleanStart: true, KeepAlive: 30,
		ClientID: []byte(id), UsernameFlag: true, Username: []byte(user), PasswordFlag: true, Password: []byte(pass)}
	if _, err := c.Write(packets.AppendConnect(nil, &cn, nil)); err != nil {
		return 0, 0, err
	}
	var ack [4]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return 0, 0, err
	}
	took := time.Since(start)
	c.Write([]byte{0xe0, 0}) // DISCONNECT
	return took, ack[3], nil
}

// cpuTime is the CPU a process has used (user and system), from
// /proc/<pid>/stat; 0 if it cannot be read.
func cpuTime(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return 0
	}
	var utime, stime int64
	fmt.Sscan(fields[11], &utime) // field 14 of stat, after pid and comm
	fmt.Sscan(fields[12], &stime)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}
