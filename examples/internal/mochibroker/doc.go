// Package mochibroker is the example broker without its command:
// mochi-mqtt with the Guard in front of every decision (a mochi hook) and
// a packet validator in front of every listener. examples/broker runs it
// from a configuration file; examples/sensors starts one for its demo.
package mochibroker
