// Package bench holds side-by-side benchmarks of mqttguard against its
// peers (mosquitto, mochi-mqtt, paho.golang, x/time/rate, wazero
// defaults). Every comparison names the implementation in its last
// sub-benchmark element (impl=mqttguard, impl=mosquitto, …) so that
// bench/run can print medians and ours/peer ratios:
//
//	bench/run            # everything, -count 6
//	bench/run Match 10   # one group, -count 10
//
// The load and attack benchmarks (BenchmarkBrokerLoad, BenchmarkProxyLoad,
// BenchmarkNoisyNeighbour) start each server as a child process on
// 127.0.0.1 and count deliveries, not iterations; bench/load runs them
// with the right -benchtime:
//
//	bench/load           # all of them, -count 3
//
// Benchmarks that call C code (mosquitto's matcher) need the build tag
// mosquittobench and libmosquitto-dev; bench/run sets the tag and
// installs the package when it is missing.
package bench
