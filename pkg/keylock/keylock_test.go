package keylock

import (
	"sync"
	"testing"
	"time"
)

// TestLock: one key is held by one goroutine at a time, other keys are
// not blocked by it, and no entry is left once every holder unlocked.
func TestLock(t *testing.T) {
	var k Mutex
	var wg sync.WaitGroup
	inside, most := 0, 0
	var mu sync.Mutex
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer k.Lock("a")()
			mu.Lock()
			inside++
			most = max(most, inside)
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			inside--
			mu.Unlock()
		}()
	}
	unlockB := k.Lock("b") // another key: not blocked by "a"
	unlockB()
	wg.Wait()
	if most != 1 {
		t.Errorf("%d goroutines held key a at once", most)
	}
	if n := k.Len(); n != 0 {
		t.Errorf("%d keys left after every unlock", n)
	}
}
