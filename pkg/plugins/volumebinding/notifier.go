package volumebinding

import "sync"

// notifier wakes PreBind goroutines waiting on particular objects when an
// informer event for one of them arrives, so binds complete as soon as the
// PV controller is done instead of on the next tick of a poll.
type notifier struct {
	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{}
}

func newNotifier() *notifier {
	return &notifier{waiters: map[string]map[chan struct{}]struct{}{}}
}

// subscribe returns a channel that receives a value (coalesced) whenever one
// of keys is notified, and a function to unsubscribe.
func (n *notifier) subscribe(keys []string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	for _, k := range keys {
		set, ok := n.waiters[k]
		if !ok {
			set = map[chan struct{}]struct{}{}
			n.waiters[k] = set
		}
		set[ch] = struct{}{}
	}
	n.mu.Unlock()
	return ch, func() {
		n.mu.Lock()
		for _, k := range keys {
			if set, ok := n.waiters[k]; ok {
				delete(set, ch)
				if len(set) == 0 {
					delete(n.waiters, k)
				}
			}
		}
		n.mu.Unlock()
	}
}

func (n *notifier) notify(key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch := range n.waiters[key] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
