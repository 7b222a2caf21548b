package redisstore

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// gcra takes tokens from one bucket in one round trip, atomically: Redis
// runs a script alone. The clock is Redis's own (TIME), so brokers whose
// clocks disagree still share one bucket fairly. Times are microseconds
// since 2023-11-14 held in doubles: exact to about 16 ns for centuries,
// where nanoseconds since 1970 would not fit a double's 53 bits. The TAT
// is stored with %.17g (a double's full precision) and expires when the
// bucket is full again, so idle keys cost Redis nothing.
var gcra = redis.NewScript(`
local tau = tonumber(ARGV[1]) / 1000
local lo = tonumber(ARGV[2]) / 1000
local hi = tonumber(ARGV[3]) / 1000
local t = redis.call('TIME')
local now = (tonumber(t[1]) - 1700000000) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local avail = now + tau - tat
if avail < lo then
  return {'0', string.format('%.17g', lo - avail)}
end
local got = math.min(avail, hi)
tat = tat + got
redis.call('SET', KEYS[1], string.format('%.17g', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
return {string.format('%.17g', got), '0'}
`)

// Take implements ratelimit.Store with one Lua script (EVALSHA; the
// script is loaded on first use).
func (c *Client) Take(ctx context.Context, key string, tolerance, lo, hi time.Duration) (taken, wait time.Duration, err error) {
	res, err := gcra.Run(ctx, c.rdb, []string{c.prefix + "rl:" + key},
		int64(tolerance), int64(lo), int64(hi)).StringSlice()
	if err != nil {
		return 0, 0, fmt.Errorf("redisstore: rate limit %q: %w", key, err)
	}
	if len(res) != 2 {
		return 0, 0, fmt.Errorf("redisstore: rate limit %q: script returned %d values, want 2", key, len(res))
	}
	got, err1 := strconv.ParseFloat(res[0], 64)
	w, err2 := strconv.ParseFloat(res[1], 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("redisstore: rate limit %q: script returned %q", key, res)
	}
	return time.Duration(math.Round(got * 1000)), time.Duration(math.Ceil(w * 1000)), nil
}
