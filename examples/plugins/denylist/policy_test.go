package main

import (
	"testing"

	"github.com/mqttguard/mqttguard/wasmguard/guest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDenyList(t *testing.T) {
	d, err := parseConfig([]byte(`{"deny": ["admin/#", "$SYS/#", "+/firmware/+"], "reason": 151}`))
	require.NoError(t, err)
	deny := guest.Deny(0x97)
	for topic, want := range map[string]guest.Verdict{
		"admin":                  deny,
		"admin/users":            deny,
		"$SYS/broker/uptime":     deny,
		"dev1/firmware/v2":       deny,
		"dev1/firmware":          guest.Allow(),
		"sensors/1/temperature":  guest.Allow(),
		"administrator/x":        guest.Allow(),
		"dev1/firmware/v2/extra": guest.Allow(),
	} {
		assert.Equal(t, want, d.publish(topic), topic)
	}
	for filter, want := range map[string]guest.Verdict{
		"#":            deny, // could receive admin/…
		"admin/+":      deny,
		"+/firmware/#": deny,
		"sensors/#":    deny, // sensors/firmware/x
		"$SYS/#":       deny,
		"+/+/+/+":      deny, // admin/a/b/c
		"+/+":          deny, // admin/x
		"sensors/+/t":  deny, // sensors/firmware/t
		"sensors/1/+":  guest.Allow(),
		"sensors/1/#":  guest.Allow(),
	} {
		assert.Equal(t, want, d.subscribe(filter), filter)
	}
}

func TestDenyListConfigErrors(t *testing.T) {
	for cfg, says := range map[string]string{
		`{"deny": ["a/#/b"]}`: "deny[0]",
		`{"deny": "admin"}`:   "configuration",
		`{"reason": 16}`:      "not an MQTT v5 failure code",
		`not json`:            "configuration",
	} {
		_, err := parseConfig([]byte(cfg))
		assert.ErrorContains(t, err, says, cfg)
	}
	d, err := parseConfig(nil)
	require.NoError(t, err, "no configuration: an empty list")
	assert.Equal(t, guest.Allow(), d.publish("admin/x"))
}
