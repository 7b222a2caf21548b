// Package stack is what the example broker and the example proxy share:
// the configuration file, the first-run setup, the Guard and every
// component it composes built from the configuration, the packet-validating
// listeners, reloading, the admin API and the Prometheus metrics. Each
// program adds how it moves MQTT: mochi-mqtt for the broker, a relay to
// an upstream broker for the proxy.
package stack
