package main

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSessionOwners(t *testing.T) {
	o := sessionOwners{max: 100}
	alice, bob := owner{username: "alice"}, owner{username: "bob"}
	assert.False(t, o.changes("c1", bob, true), "nobody known: nothing to refuse")
	o.record("c1", alice, true)
	assert.True(t, o.changes("c1", bob, true))
	assert.False(t, o.changes("c1", bob, false), "a clean start ends the session anyway")
	assert.False(t, o.changes("c1", alice, true))
	o.record("c1", alice, false)
	assert.False(t, o.changes("c1", bob, true), "the session ended with its connection")

	for i := range 1000 {
		o.record(fmt.Sprint("flood", i), bob, true)
	}
	assert.LessOrEqual(t, len(o.m), 100, "bounded")
}
