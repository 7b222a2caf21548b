package anomaly_test

import (
	"testing"
	"time"

	"github.com/mqttguard/mqttguard/anomaly"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFlappingSetConfig(t *testing.T) {
	f := anomaly.NewFlappingDetector(anomaly.FlappingConfig{MaxConnects: 10, MaxClients: 64})
	at := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	f.SetConfig(anomaly.FlappingConfig{MaxConnects: 3, BanFor: time.Hour, MaxClients: 1 << 30})
	cfg := f.Config()
	assert.Equal(t, 3, cfg.MaxConnects)
	assert.Equal(t, time.Minute, cfg.Window, "a zero field is the default")
	assert.Equal(t, 64, cfg.MaxClients, "memory was sized at New: MaxClients stays")

	var v anomaly.FlapVerdict
	for i := range 3 {
		v = f.Connect("loop", at.Add(time.Duration(i)*time.Second))
	}
	require.True(t, v.Ban, "the third connect reaches the new maximum")
	assert.Equal(t, at.Add(2*time.Second+time.Hour), v.BanUntil, "banned for the new BanFor")
}

func TestIntervalSetResolver(t *testing.T) {
	d := anomaly.NewIntervalDetector(anomaly.Config{})
	at := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	s := anomaly.Subject{ClientID: "t1", Topic: "sensors/t1/temperature"}
	assert.Equal(t, anomaly.NoProfile, d.ObserveMessage(s, at).Result)

	res, err := anomaly.NewResolver([]anomaly.ProfileRule{{TopicFilter: "sensors/+/temperature",
		Profile: anomaly.Profile{Interval: time.Minute, Tolerance: 5 * time.Second}}})
	require.NoError(t, err)
	d.SetResolver(res)
	assert.Equal(t, anomaly.First, d.ObserveMessage(s, at).Result)
	assert.Equal(t, anomaly.TooEarly, d.ObserveMessage(s, at.Add(time.Second)).Result)

	d.SetResolver(nil)
	assert.Equal(t, anomaly.NoProfile, d.ObserveMessage(s, at.Add(2*time.Second)).Result)
}
