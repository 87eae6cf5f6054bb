package regevent

import "time"

// ExpireSubscriptions makes every subscription of n expire at when,
// for the expiry timer to end it.
func ExpireSubscriptions(n *Notifier, when time.Time) {
	n.mu.Lock()
	for _, s := range n.subs {
		s.Expires = when
	}
	n.mu.Unlock()
}

// SubscriptionEntries counts n's subscriptions and the entries of its
// by-IMPU and by-AOR indexes.
func SubscriptionEntries(n *Notifier) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.subs) + n.byIMPU.Len() + n.byAOR.Len()
}
