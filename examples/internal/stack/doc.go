// Package stack is what the example broker and the example proxy share:
// the configuration file, the first-run setup, the Guard and every
// component it composes built from the configuration, the packet-validating
// listeners, reloading, the admin API and the Prometheus metrics. Each
// program adds how it moves MQTT: mochi-mqtt for the broker, a relay to
// an upstream broker for the proxy.
//
// Stack.Cfg is the configuration in force. A reload (Stack.Reload: SIGHUP
// or POST /reload) compares the file with it key by key: what can change
// under live connections — mode, rate limits, trust factors, flapping,
// device profiles, plugins, the ACL and password files — is put in force
// and written into Cfg; every other changed key is logged as needing a
// restart, and Cfg keeps the value the program runs with.
//
// The first run's passwords exist in clear only until a start has shown
// them (NewAccountsFile, FirstRun.Shown); ResetPassword makes new ones.
package stack
