//go:build cgo && mosquittobench

// Package mosqc calls libmosquitto's topic matcher from a C loop, so a
// benchmark measures mosquitto_topic_matches_sub and not the cost of a
// cgo call per match. Build with -tags mosquittobench and the Debian
// package libmosquitto-dev installed (bench/run installs it).
package mosqc

/*
#cgo LDFLAGS: -lmosquitto
#include <stdbool.h>
#include <stdlib.h>
#include <mosquitto.h>

static long match_loop(char **subs, char **topics, int n, long iters) {
	long matches = 0;
	bool result;
	for (long i = 0; i < iters; i++) {
		for (int j = 0; j < n; j++) {
			if (mosquitto_topic_matches_sub(subs[j], topics[j], &result) == MOSQ_ERR_SUCCESS && result) {
				matches++;
			}
		}
	}
	return matches;
}
*/
import "C"

import "unsafe"

// Vectors holds C copies of filter/topic pairs.
type Vectors struct {
	subs, topics **C.char
	n            int
}

// NewVectors copies the pairs into C memory; call Free when done.
func NewVectors(filters, topics []string) *Vectors {
	n := len(filters)
	size := C.size_t(n) * C.size_t(unsafe.Sizeof((*C.char)(nil)))
	v := &Vectors{subs: (**C.char)(C.malloc(size)), topics: (**C.char)(C.malloc(size)), n: n}
	subs := unsafe.Slice(v.subs, n)
	tops := unsafe.Slice(v.topics, n)
	for i := range filters {
		subs[i] = C.CString(filters[i])
		tops[i] = C.CString(topics[i])
	}
	return v
}

// Loop runs iters passes over the vectors in C and returns how many
// pairs matched.
func (v *Vectors) Loop(iters int) int {
	return int(C.match_loop(v.subs, v.topics, C.int(v.n), C.long(iters)))
}

// Free releases the C memory.
func (v *Vectors) Free() {
	subs := unsafe.Slice(v.subs, v.n)
	tops := unsafe.Slice(v.topics, v.n)
	for i := 0; i < v.n; i++ {
		C.free(unsafe.Pointer(subs[i]))
		C.free(unsafe.Pointer(tops[i]))
	}
	C.free(unsafe.Pointer(v.subs))
	C.free(unsafe.Pointer(v.topics))
}
