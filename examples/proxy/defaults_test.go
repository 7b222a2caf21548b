package main

import (
	"strconv"
	"testing"

	"github.com/mqttguard/mqttguard/guardconf"
	"github.com/mqttguard/mqttguard/guardstack"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The proxy runs beside the example broker with both on their defaults:
// no port of one is a port of the other, nor the upstream's.
func TestDefaultPortsDifferFromTheBrokers(t *testing.T) {
	broker, err := guardconf.ParseConfig(guardconf.DefaultConfig, "broker", "/b", nil)
	require.NoError(t, err)
	proxy, err := guardconf.ParseConfig(defaultConfig, "proxy", "/p", &proxyConfig{})
	require.NoError(t, err)

	assert.Equal(t, 11883, proxy.MQTT.Port)
	assert.Equal(t, 18883, proxy.MQTT.TLSPort)
	assert.Equal(t, "127.0.0.1:18080", proxy.Admin.Listen)
	assert.Equal(t, "127.0.0.1:1884", upstreamOf(proxy).Addr)

	_, brokerAdmin, _ := guardstack.SplitHostPort(broker.Admin.Listen)
	_, proxyAdmin, _ := guardstack.SplitHostPort(proxy.Admin.Listen)
	_, upstream, _ := guardstack.SplitHostPort(upstreamOf(proxy).Addr)
	ports := map[string]string{}
	for what, p := range map[string]string{
		"broker mqtt": strconv.Itoa(broker.MQTT.Port), "broker tls": strconv.Itoa(broker.MQTT.TLSPort), "broker admin": brokerAdmin,
		"proxy mqtt": strconv.Itoa(proxy.MQTT.Port), "proxy tls": strconv.Itoa(proxy.MQTT.TLSPort), "proxy admin": proxyAdmin,
		"upstream": upstream,
	} {
		assert.Empty(t, ports[p], "%s and %s share port %s", what, ports[p], p)
		ports[p] = what
	}
}
