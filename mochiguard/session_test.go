package mochiguard

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestAllocationOrder(t *testing.T) {
	for _, c := range []struct{ in, want []uint16 }{
		{nil, nil},
		{[]uint16{7}, []uint16{7}},
		{[]uint16{3, 1, 2}, []uint16{1, 2, 3}},
		{[]uint16{2, 65534, 1, 65535}, []uint16{65534, 65535, 1, 2}}, // round again after 65535
		{[]uint16{10, 12, 40000}, []uint16{40000, 10, 12}},           // the oldest is after the widest gap
		{[]uint16{100, 30000, 30001}, []uint16{100, 30000, 30001}},   // here the widest is across the wrap
	} {
		assert.Equal(t, c.want, allocationOrder(c.in), "%v", c.in)
	}
}
