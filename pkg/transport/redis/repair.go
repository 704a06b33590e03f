package redis

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// Repairing a sharded subscription connection by connection (see
// shardedSub). The readers report what goes wrong (lose, dropped,
// refused); the session's goroutine moves the channels (repair) and is
// told when Redis confirmed all of them (the repaired signal), when it
// calls Config.OnResubscribe: messages sent to those channels meanwhile
// may be missing.

// signal signals c without blocking.
func (s *shardedSub) signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// lose takes sh for lost (its master failed, its probe did not come back
// or was not counted, a command on it failed): the next repair closes it
// and moves its channels.
func (s *shardedSub) lose(sh *shard, why error) {
	s.mu.Lock()
	if sh.lost || sh.draining {
		s.mu.Unlock()
		return
	}
	sh.lost = true
	s.repairing = true
	channels := make([]string, 0, len(sh.channels))
	for ch := range sh.channels {
		channels = append(channels, ch)
	}
	s.mu.Unlock()
	for _, ch := range channels {
		s.t.interest.confirmed(ch, false)
	}
	ev := s.t.log.Warn()
	if !sh.reading {
		ev = s.t.log.Debug() // a repair's attempt on a master not back yet
	}
	ev.Err(why).Str("master", sh.addr).Int("channels", len(channels)).Msg("shard subscription lost, repairing it")
	s.signal(s.trouble)
}

// dropped handles Redis unsubscribing ch on sh: the confirmation of an
// unsubscription the node asked for, or else its slot moved to another
// master (or the probe channel's, which takes the connection for lost).
func (s *shardedSub) dropped(sh *shard, ch string) {
	s.mu.Lock()
	if sh.draining || sh.lost {
		s.mu.Unlock()
		return
	}
	if n, ok := sh.leaving[ch]; ok {
		if n <= 1 {
			delete(sh.leaving, ch)
		} else {
			sh.leaving[ch] = n - 1
		}
		s.mu.Unlock()
		return
	}
	if ch == sh.probe {
		s.mu.Unlock()
		s.lose(sh, errSlotMoved)
		return
	}
	_, held := sh.channels[ch]
	if held {
		delete(sh.channels, ch)
		s.homeless[ch] = sh.addr
		s.repairing = true
	}
	s.mu.Unlock()
	if held {
		s.t.log.Warn().Err(errSlotMoved).Str("channel", ch).Str("master", sh.addr).Msg("moving the channel to its slot's new master")
		s.signal(s.trouble)
	}
}

// refused handles an error Redis answered a command on sh with: -MOVED
// means that master no longer owns the slot, so the channels held on sh
// in that slot move (SSUBSCRIBE and SUNSUBSCRIBE are answered in order,
// but an unsolicited SUNSUBSCRIBE of the slot's channels comes first, so
// the slot, not the position, tells which); any other error takes the
// connection for lost.
func (s *shardedSub) refused(sh *shard, err error) {
	slot, ok := movedSlot(err.Error())
	if !ok {
		s.lose(sh, err)
		return
	}
	s.mu.Lock()
	if sh.draining || sh.lost {
		s.mu.Unlock()
		return
	}
	if keySlot(sh.probe) == slot {
		s.mu.Unlock()
		s.lose(sh, err)
		return
	}
	moved := 0
	for ch := range sh.channels {
		if keySlot(ch) == slot {
			delete(sh.channels, ch)
			s.homeless[ch] = sh.addr
			moved++
		}
	}
	if moved > 0 {
		s.repairing = true
	}
	s.mu.Unlock()
	if moved > 0 {
		s.t.log.Warn().Err(err).Str("master", sh.addr).Int("channels", moved).Msg("moving channels to their slot's new master")
		s.signal(s.trouble)
	}
}

// subscribed handles Redis confirming the subscription of ch on sh.
func (s *shardedSub) subscribed(sh *shard, ch string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.rehoming[ch]; ok {
		if _, held := sh.channels[ch]; held {
			delete(s.rehoming, ch)
			s.checkRepairedLocked()
		}
	}
}

// echo records a probe token back on sh.
func (s *shardedSub) echo(sh *shard, token string) {
	s.mu.Lock()
	sh.echoed = token
	s.mu.Unlock()
}

// checkRepairedLocked signals repaired when a repair was under way and
// every channel is on a connection again and confirmed. s.mu is held.
func (s *shardedSub) checkRepairedLocked() {
	if !s.repairing || len(s.homeless) > 0 || len(s.rehoming) > 0 {
		return
	}
	for _, sh := range s.shards {
		if sh.lost {
			return
		}
	}
	s.repairing = false
	s.signal(s.repaired)
}

// late handles the deadline of probe token: every connection that was
// sent it and did not echo it is taken for lost. It reports that the
// session goes on (a session of several connections repairs them one by
// one).
func (s *shardedSub) late(token string) bool {
	var late []*shard
	s.mu.Lock()
	for _, sh := range s.shards {
		if sh.probedFor == token && sh.echoed != token && !sh.lost {
			late = append(late, sh)
		}
	}
	s.mu.Unlock()
	for _, sh := range late {
		s.t.stats.probeFailures.Add(1)
		s.lose(sh, ErrProbeTimeout)
	}
	return true
}

// healthy reports whether the node's reply channel is subscribed and
// confirmed: without it the node cannot collect the replies to its sends.
func (s *shardedSub) healthy() bool {
	sh := s.home[s.t.replyChannel]
	s.mu.Lock()
	defer s.mu.Unlock()
	_, homeless := s.homeless[s.t.replyChannel]
	_, rehoming := s.rehoming[s.t.replyChannel]
	return sh != nil && !sh.lost && !homeless && !rehoming
}

// troubled is signalled when there is something to repair.
func (s *shardedSub) troubled() <-chan struct{} { return s.trouble }

// repairedC is signalled when a repair is complete.
func (s *shardedSub) repairedC() <-chan struct{} { return s.repaired }

// repair closes the lost connections and subscribes every channel
// without a connection on the master owning its slot now, each bounded
// by the probe timeout. It reports whether some are left for later: a
// channel whose slot the client's slot map (reloaded in the background)
// still gives to the master that dropped it, or whose master cannot be
// reached yet (it failed and its replica is not promoted yet).
func (s *shardedSub) repair(ctx context.Context) (again bool) {
	var lost []*shard
	s.mu.Lock()
	for addr, sh := range s.shards {
		if !sh.lost {
			continue
		}
		lost = append(lost, sh)
		delete(s.shards, addr)
		for ch := range sh.channels {
			s.homeless[ch] = ""
			delete(s.rehoming, ch)
		}
		clear(sh.channels)
	}
	todo := make(map[string]string, len(s.homeless))
	for ch, avoid := range s.homeless {
		todo[ch] = avoid
	}
	s.mu.Unlock()
	for _, sh := range lost {
		_ = sh.ps.Close()
	}
	if len(todo) == 0 {
		s.mu.Lock()
		s.checkRepairedLocked()
		s.mu.Unlock()
		return false
	}
	// Where the slots are now: the reload runs in the background, so a
	// channel whose slot still names the master that dropped it waits
	// for a later attempt.
	s.cc.ReloadState(ctx)
	rctx, cancel := context.WithTimeout(ctx, s.t.cfg.ProbeTimeout)
	defer cancel()
	// Every channel to place is rehoming from now on, and goes back to
	// homeless in the same step when it cannot be placed.
	s.mu.Lock()
	for ch := range todo {
		if _, still := s.homeless[ch]; !still {
			delete(todo, ch) // unsubscribed meanwhile
			continue
		}
		delete(s.homeless, ch)
		s.rehoming[ch] = struct{}{}
	}
	s.mu.Unlock()
	placed := 0
	for ch, avoid := range todo {
		addr, err := s.masterOf(rctx, ch)
		if err != nil || addr == avoid {
			s.mu.Lock()
			if _, ok := s.rehoming[ch]; ok {
				delete(s.rehoming, ch)
				s.homeless[ch] = avoid
			}
			s.mu.Unlock()
			again = true
			continue
		}
		if err := s.place(rctx, ch, addr); err != nil {
			again = true
			continue
		}
		placed++
	}
	if placed > 0 {
		s.t.stats.shardMoves.Add(uint64(placed))
	}
	s.mu.Lock()
	for _, sh := range s.shards {
		again = again || sh.lost
	}
	again = again || len(s.homeless) > 0
	s.checkRepairedLocked()
	s.mu.Unlock()
	return again
}

// Repair retry bounds: a slot map reloads in about a millisecond, a
// failed master's replica takes over after the cluster-node-timeout.
const (
	repairBackoffMin = 20 * time.Millisecond
	repairBackoffMax = 500 * time.Millisecond
)

// movedSlot returns the slot of a -MOVED error ("MOVED 3999 host:port").
func movedSlot(msg string) (int, bool) {
	rest, ok := strings.CutPrefix(msg, "MOVED ")
	if !ok {
		return 0, false
	}
	n, _, _ := strings.Cut(rest, " ")
	slot, err := strconv.Atoi(n)
	return slot, err == nil
}

// keySlot returns the Redis Cluster hash slot of key: CRC16 (XMODEM) of
// the key, or of its hash tag (the text between the first { and the next
// } when not empty), modulo 16384.
func keySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % 16384
}

// isDraining reports whether stop is unsubscribing sh's channels.
func (s *shardedSub) isDraining(sh *shard) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sh.draining
}
