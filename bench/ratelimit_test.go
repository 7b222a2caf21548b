package bench

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/ratelimit"
	"golang.org/x/time/rate"
)

// keyedLimiter is what the peers and we have in common.
type keyedLimiter interface {
	AllowN(key string, t time.Time, n int) bool
}

// mutexMap is the pattern people write: map[string]*rate.Limiter behind
// a mutex, the lock held for the lookup only.
type mutexMap struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
	r  rate.Limit
	b  int
}

func (mm *mutexMap) AllowN(key string, t time.Time, n int) bool {
	mm.mu.Lock()
	l := mm.m[key]
	if l == nil {
		l = rate.NewLimiter(mm.r, mm.b)
		mm.m[key] = l
	}
	mm.mu.Unlock()
	return l.AllowN(t, n)
}

// syncMap is the other common pattern: sync.Map of *rate.Limiter.
type syncMap struct {
	m sync.Map
	r rate.Limit
	b int
}

func (sm *syncMap) AllowN(key string, t time.Time, n int) bool {
	v, ok := sm.m.Load(key)
	if !ok {
		v, _ = sm.m.LoadOrStore(key, rate.NewLimiter(sm.r, sm.b))
	}
	return v.(*rate.Limiter).AllowN(t, n)
}

// shared is one rate.Limiter for every key: not keyed at all, the floor
// of what x/time/rate costs.
type shared struct{ l *rate.Limiter }

func (s shared) AllowN(_ string, t time.Time, n int) bool { return s.l.AllowN(t, n) }

// Every call is allowed: the comparison is of bookkeeping, not refusals.
const benchLimit, benchBurst = rate.Limit(1e9), 1 << 30

func newKeyed(impl string) keyedLimiter {
	switch impl {
	case "mqttguard":
		return ratelimit.New(benchLimit, benchBurst, ratelimit.WithMaxKeys(4<<20))
	case "mutex-map":
		return &mutexMap{m: map[string]*rate.Limiter{}, r: benchLimit, b: benchBurst}
	case "sync-map":
		return &syncMap{r: benchLimit, b: benchBurst}
	case "shared-limiter":
		return shared{rate.NewLimiter(benchLimit, benchBurst)}
	}
	panic(impl)
}

var rateImpls = []string{"mqttguard", "mutex-map", "sync-map", "shared-limiter"}

func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("client-%09d", i)
	}
	return keys
}

// BenchmarkRateLimit: existing keys, time passed in. serial is one
// goroutine; partitioned runs one goroutine per core, each over its own
// range of keys, as a broker's connection goroutines check their own
// clients; shared has every goroutine sweep all keys, so cores contend
// for the same buckets.
func BenchmarkRateLimit(b *testing.B) {
	procs := runtime.GOMAXPROCS(0)
	for _, nkeys := range []int{1000, 1_000_000} {
		keys := benchKeys(nkeys)
		for _, mode := range []string{"serial", "partitioned", "shared"} {
			for _, impl := range rateImpls {
				b.Run(fmt.Sprintf("%s/keys=%d/impl=%s", mode, nkeys, impl), func(b *testing.B) {
					l := newKeyed(impl)
					now := time.Now()
					for _, k := range keys {
						l.AllowN(k, now, 1)
					}
					b.ReportAllocs()
					b.ResetTimer()
					if mode == "serial" {
						for i := 0; i < b.N; i++ {
							l.AllowN(keys[i%nkeys], now, 1)
						}
						return
					}
					var worker atomic.Uint64
					b.RunParallel(func(pb *testing.PB) {
						w := int(worker.Add(1) - 1)
						lo, hi := 0, nkeys
						if mode == "partitioned" {
							lo, hi = (w%procs)*nkeys/procs, (w%procs+1)*nkeys/procs
						}
						r := rand.New(rand.NewPCG(uint64(w), 1))
						i := lo + r.IntN(hi-lo)
						for pb.Next() {
							l.AllowN(keys[i], now, 1)
							if i++; i == hi {
								i = lo
							}
						}
					})
				})
			}
		}
	}
}

// BenchmarkRateLimitHeap: heap per key at a million keys, key strings
// included (the peers keep them; we keep only a hash).
func BenchmarkRateLimitHeap(b *testing.B) {
	const n = 1_000_000
	for _, impl := range []string{"mqttguard", "mutex-map", "sync-map"} {
		b.Run("keys=1000000/impl="+impl, func(b *testing.B) {
			var perKey float64
			for i := 0; i < b.N; i++ {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				l := newKeyed(impl)
				now := time.Now()
				for k := 0; k < n; k++ {
					// Keys built here, so the structure owns them.
					l.AllowN(fmt.Sprintf("client-%09d", k), now, 1)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perKey = float64(after.HeapAlloc-before.HeapAlloc) / n
				runtime.KeepAlive(l)
			}
			b.ReportMetric(perKey, "B/key")
		})
	}
}

// BenchmarkRateLimitMulti: three dimensions (client, user, IP) charged
// all or nothing, against three mutex maps checked one after the other
// (which is not all or nothing).
func BenchmarkRateLimitMulti(b *testing.B) {
	keys := benchKeys(1000)
	b.Run("dims=3/impl=mqttguard", func(b *testing.B) {
		c, u, ip := ratelimit.New(benchLimit, benchBurst), ratelimit.New(benchLimit, benchBurst), ratelimit.New(benchLimit, benchBurst)
		now := time.Now()
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			k := keys[i%len(keys)]
			ratelimit.Multi{{Limiter: c, Key: k, N: 1}, {Limiter: u, Key: k[:10], N: 1}, {Limiter: ip, Key: k[7:], N: 1}}.Allow(now)
		}
	})
	b.Run("dims=3/impl=mutex-map", func(b *testing.B) {
		c, u, ip := newKeyed("mutex-map"), newKeyed("mutex-map"), newKeyed("mutex-map")
		now := time.Now()
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			k := keys[i%len(keys)]
			_ = c.AllowN(k, now, 1) && u.AllowN(k[:10], now, 1) && ip.AllowN(k[7:], now, 1)
		}
	})
}
