package mqttguard_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/mqttguard/mqttguard"
	"github.com/mqttguard/mqttguard/anomaly"
	"github.com/mqttguard/mqttguard/trust"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// publishes counts the publishes of a client the Guard allows out of n,
// all at the same instant.
func publishes(g *mqttguard.Guard, c *mqttguard.Client, n int) int {
	ok := 0
	for range n {
		if d := g.Publish(context.Background(), c, &mqttguard.Message{Topic: "sensors/" + c.ID, Subscribers: -1}, t0); d.Verdict == mqttguard.Allow {
			ok++
		}
	}
	return ok
}

func TestSetRateLimitsAppliesToTheNextPublish(t *testing.T) {
	g, err := mqttguard.New(mqttguard.Config{Mode: trust.EnforceLight,
		RateLimits: mqttguard.RateLimits{MessagesPerUser: mqttguard.Rate{PerSecond: 1, Burst: 3}}})
	require.NoError(t, err)
	c := &mqttguard.Client{ID: "a", Username: "u"}
	require.Equal(t, 3, publishes(g, c, 10), "the burst at New")

	require.NoError(t, g.SetRateLimits(mqttguard.RateLimits{MessagesPerUser: mqttguard.Rate{PerSecond: 1, Burst: 8}}))
	assert.Equal(t, 8, publishes(g, c, 20), "a changed limit starts with a full burst of the new size")
	assert.Equal(t, 8, g.Config().RateLimits.MessagesPerUser.Burst, "Config reports the limits in force")

	require.NoError(t, g.SetRateLimits(mqttguard.RateLimits{}))
	assert.Equal(t, 50, publishes(g, c, 50), "the zero Rate is no limit")
}

func TestSetRateLimitsKeepsWhatAnUnchangedLimitSpent(t *testing.T) {
	client := mqttguard.Rate{PerSecond: 1, Burst: 2}
	g, err := mqttguard.New(mqttguard.Config{Mode: trust.EnforceLight,
		RateLimits: mqttguard.RateLimits{MessagesPerClient: client}})
	require.NoError(t, err)
	c := &mqttguard.Client{ID: "a", Username: "u"}
	require.Equal(t, 2, publishes(g, c, 5))

	// Another limit changes; the client's empty bucket must stay empty.
	require.NoError(t, g.SetRateLimits(mqttguard.RateLimits{MessagesPerClient: client, MessagesPerUser: mqttguard.Rate{PerSecond: 100}}))
	assert.Equal(t, 0, publishes(g, c, 5))
}

func TestSetRateLimitsRefusesWhatIsFixedAtNew(t *testing.T) {
	g, err := mqttguard.New(mqttguard.Config{Mode: trust.EnforceFull,
		RateLimits: mqttguard.RateLimits{MessagesPerUser: mqttguard.Rate{PerSecond: 1, Burst: 1}}})
	require.NoError(t, err)
	var ce *mqttguard.ConfigError

	err = g.SetRateLimits(mqttguard.RateLimits{MessagesPerUser: mqttguard.Rate{PerSecond: -1}})
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "RateLimits.MessagesPerUser", ce.Field)

	err = g.SetRateLimits(mqttguard.RateLimits{MessagesPerUser: mqttguard.Rate{PerSecond: 5}, MaxKeys: 10})
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "RateLimits.MaxKeys", ce.Field)
	assert.Contains(t, err.Error(), "restart")

	c := &mqttguard.Client{ID: "a", Username: "u"}
	assert.Equal(t, 1, publishes(g, c, 3), "a refused SetRateLimits leaves the old limits in force")
}

// Publishes racing with SetRateLimits (run with -race).
func TestSetRateLimitsUnderLoad(t *testing.T) {
	g, err := mqttguard.New(mqttguard.Config{Mode: trust.EnforceLight,
		RateLimits: mqttguard.RateLimits{MessagesPerUser: mqttguard.Rate{PerSecond: 10}}})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &mqttguard.Client{ID: fmt.Sprint("c", i), Username: "u"}
			publishes(g, c, 500)
		}()
	}
	for i := range 50 {
		require.NoError(t, g.SetRateLimits(mqttguard.RateLimits{MessagesPerUser: mqttguard.Rate{PerSecond: float64(i + 1)}}))
	}
	wg.Wait()
}

func TestNewSaysWhenTheZeroModeLeavesTheAbuseLayerUnenforced(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	_, err := mqttguard.New(mqttguard.Config{Logger: log,
		RateLimits: mqttguard.RateLimits{MessagesPerUser: mqttguard.Rate{PerSecond: 50}}})
	require.NoError(t, err)
	assert.Contains(t, buf.String(), "Config.Mode is ObserveOnly (the zero value)")
	assert.Equal(t, 1, bytes.Count(buf.Bytes(), []byte("\n")), "one line")

	for name, cfg := range map[string]mqttguard.Config{
		"enforcing":        {Mode: trust.EnforceLight, RateLimits: mqttguard.RateLimits{MessagesPerUser: mqttguard.Rate{PerSecond: 50}}},
		"no abuse layer":   {},
		"flapping, full":   {Mode: trust.EnforceFull, Flapping: anomaly.NewFlappingDetector(anomaly.FlappingConfig{})},
		"no logger at all": {RateLimits: mqttguard.RateLimits{MessagesPerUser: mqttguard.Rate{PerSecond: 50}}},
	} {
		buf.Reset()
		if name != "no logger at all" {
			cfg.Logger = log
		}
		_, err := mqttguard.New(cfg)
		require.NoError(t, err, name)
		assert.Empty(t, buf.String(), name)
	}
	buf.Reset()
	_, err = mqttguard.New(mqttguard.Config{Logger: log, Flapping: anomaly.NewFlappingDetector(anomaly.FlappingConfig{})})
	require.NoError(t, err)
	assert.Contains(t, buf.String(), "ObserveOnly", "a flapping detector alone is abuse layer too")
}

// A broker that cannot wait (CannotDelay) never waits on the fleet's
// store either: a publish whose lease is not there yet is decided
// locally at once, while the store is still answering.
func TestCannotDelayNeverWaitsOnTheStore(t *testing.T) {
	st := &heldStore{release: make(chan struct{})}
	g, err := mqttguard.New(mqttguard.Config{Mode: trust.EnforceFull, CannotDelay: true,
		RateLimits: mqttguard.RateLimits{MessagesPerUser: mqttguard.Rate{PerSecond: 10, Burst: 20}, Store: st}})
	require.NoError(t, err)
	defer close(st.release) // lets the refill the store holds end
	c := &mqttguard.Client{ID: "s1", Username: "sensor1"}
	done := make(chan mqttguard.Verdict)
	go func() {
		done <- g.Publish(context.Background(), c, &mqttguard.Message{Topic: "sensors/s1", Subscribers: -1}, t0).Verdict
	}()
	select {
	case v := <-done:
		assert.Equal(t, mqttguard.Allow, v, "decided by the local limit while the lease is filled")
	case <-time.After(5 * time.Second):
		t.Fatal("Publish waited on the store")
	}
}

// heldStore answers no Take until release is closed.
type heldStore struct{ release chan struct{} }

func (h *heldStore) Take(context.Context, string, time.Duration, time.Duration, time.Duration) (time.Duration, time.Duration, error) {
	<-h.release
	return 0, time.Second, nil
}
