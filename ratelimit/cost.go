package ratelimit

// FanoutCost is the cost of one message by the number of subscribers it
// will be delivered to: 1–10 subscribers
// cost 1, 11–100 cost 2, 101–500 cost 5, 501–1000 cost 10 and more than
// 1000 cost 20. A message with no subscriber still costs 1. Use it as n
// in AllowN for a per-topic or per-publisher bucket, so that one publish
// to a large audience weighs like the writes it causes.
func FanoutCost(subscribers int) int {
	switch {
	case subscribers <= 10:
		return 1
	case subscribers <= 100:
		return 2
	case subscribers <= 500:
		return 5
	case subscribers <= 1000:
		return 10
	}
	return 20
}
