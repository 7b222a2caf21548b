// Package guardstack builds a running Guard from a configuration file
// (package guardconf) and keeps it running: every component the file
// asks for, the first-run setup, the packet-validating listeners, the
// sweeper, the ban and trust files, TLS file watching, reloading, and
// the admin API (package adminapi) with its Prometheus metrics (package
// guardmetrics). A program adds how it moves MQTT: the example broker
// mochi-mqtt with package mochiguard's hook, the example proxy a relay
// to an upstream broker.
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
package guardstack
