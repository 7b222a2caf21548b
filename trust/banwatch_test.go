package trust

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Watchers come and go while bans are added and lifted on other
// goroutines (run with -race): one registered throughout hears every
// add, and after the changes, a stopped watcher hears nothing more.
func TestBanWatchersConcurrently(t *testing.T) {
	var b Bans
	var throughout atomic.Int64
	var heard atomic.Int64
	stopLate := b.WatchAdded(func(Ban) { throughout.Add(1) })
	var wg sync.WaitGroup
	for w := range 4 { // changers
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				v := "c" + strconv.Itoa(w) + "-" + strconv.Itoa(i)
				require.NoError(t, b.Add(Ban{Kind: BanClientID, Value: v, Until: time.Now().Add(time.Hour)}))
				b.Remove(BanClientID, v)
			}
		}()
	}
	for range 2 { // watchers that come and go
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				stopA := b.WatchAdded(func(Ban) { heard.Add(1) })
				stopC := b.WatchChanges(func(BanChange) { heard.Add(1) })
				stopA()
				stopC()
				stopC() // a second stop does nothing
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int64(4*200), throughout.Load(), "every add, each once")
	stopLate()
	require.NoError(t, b.Add(Ban{Kind: BanUsername, Value: "trudy"}))
	assert.Equal(t, int64(4*200), throughout.Load(), "a stopped watcher hears nothing")

	// A watcher registered now hears exactly one add and one lift.
	var adds, changes atomic.Int64
	stopA := b.WatchAdded(func(Ban) { adds.Add(1) })
	stopC := b.WatchChanges(func(BanChange) { changes.Add(1) })
	require.NoError(t, b.Add(Ban{Kind: BanUsername, Value: "mallory"}))
	b.Remove(BanUsername, "mallory")
	stopA()
	stopC()
	require.NoError(t, b.Add(Ban{Kind: BanUsername, Value: "eve"}))
	assert.Equal(t, int64(1), adds.Load())
	assert.Equal(t, int64(2), changes.Load(), "the add and the lift")
}
