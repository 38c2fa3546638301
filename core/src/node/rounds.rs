//! The node's periodic rounds: one method per [`Timer`], each re-arming its own timer before
//! it acts, plus the join attempts and urgent gossip those rounds drive.
//!
//! These are [`Node`]'s own methods (the router's timer dispatch), kept apart from the public
//! surface in `node.rs`; the rules they apply live in the sub-machines they call.

use super::antientropy::digest_of;
use super::{Event, Node};
use crate::dissemination::UrgentRound;
use crate::membership::{MemberState, Update};
use crate::timer::{Timer, TimerTable};
use crate::wire::Message;
use crate::Timestamp;
use core::net::SocketAddr;
use core::time::Duration;
use rand_core::RngCore;

impl<R: RngCore> Node<R> {
    pub(super) fn send_join(&mut self) {
        self.send_join_with(Message::Join);
    }

    /// Sends `message` (a `Join`, or a `JoinEcho` after the seed's challenge) to the current
    /// attempt's seed, with this node's own record, and re-arms the retry.
    pub(super) fn send_join_with(&mut self, message: Message) {
        let Some((seed, backoff)) = self.lifecycle.attempt(&self.config) else {
            return;
        };
        let me = Update::Alive(self.me.clone());
        self.send(seed, None, message, Some(&me));
        self.timers.set(Timer::JoinRetry, self.now + backoff);
    }

    pub(super) fn on_join_retry(&mut self) {
        if self.lifecycle.next_attempt() {
            self.send_join();
        }
    }

    /// A join reply's last part arrived; returns whether a join was pending.
    pub(super) fn finish_join(&mut self, via: SocketAddr) -> bool {
        if !self.lifecycle.joined() {
            return false;
        }
        self.timers.stop(Timer::JoinRetry);
        self.events.push_back(Event::Joined {
            via,
            members: self.table.live_count(),
        });
        // Anti-entropy soon after joining: the seed's view may have been partial.
        let soon = self.jittered(self.config.gossip_interval * 2);
        self.timers.set(Timer::Sync, self.now + soon);
        true
    }

    /// The gossip rounds this node slept through: while the queue is idle (nothing queued,
    /// no urgent round asked for) `poll_timeout` leaves the gossip timer out, so a settled
    /// node is not woken five times a second to find nothing to send. Every input first
    /// moves the dormant deadline on by whole intervals to the first one at or after `now`,
    /// where each idle round would have re-armed it (a round does nothing else when idle;
    /// the partition window and detection deadlines have their own). A deadline equal to
    /// `now` stays: at equal times a datagram is handled before a timer, so that round has
    /// not run yet, and `handle_timeout` runs it as it would have.
    ///
    /// The rounds run exactly when they ran before with the timer always armed, given a
    /// driver that calls `handle_timeout` at the deadline itself (the simulator does, without
    /// clock skew); a late call used to shift every later round by its lateness, and now
    /// shifts none.
    pub(super) fn skip_idle_gossip_rounds(&mut self) {
        if !self.gossip.is_idle() {
            return;
        }
        let Some(due) = self.timers.get(Timer::Gossip) else {
            return;
        };
        // Whole microseconds, as `Timestamp + Duration` counts them when a round re-arms.
        let interval = (due + self.config.gossip_interval).as_micros() - due.as_micros();
        if due >= self.now || interval == 0 {
            return;
        }
        let behind = self.now.as_micros() - due.as_micros();
        let rounds = behind.div_ceil(interval);
        let next = due
            .as_micros()
            .saturating_add(rounds.saturating_mul(interval));
        self.timers.set(Timer::Gossip, Timestamp::from_micros(next));
    }

    pub(super) fn on_gossip(&mut self) {
        let next = self.now + self.config.gossip_interval;
        self.timers.set(Timer::Gossip, next);
        if self.gossip.is_empty() {
            return;
        }
        for id in self.random_peers(self.config.gossip_fanout) {
            if self.gossip.is_empty() {
                break;
            }
            self.send_to_member(id, Message::Gossip, None);
        }
    }

    pub(super) fn on_sync(&mut self) {
        let base = self.sync.next_round_in(self.now, &self.config);
        let next = self.jittered(base);
        self.timers.set(Timer::Sync, self.now + next);
        if !self.lifecycle.running() {
            return;
        }
        let Some(&peer) = self.random_peers(1).first() else {
            return;
        };
        let seq = self.sync.start_sync(peer);
        let digest = digest_of(&self.table);
        self.send_to_member(peer, Message::Sync { seq, digest }, None);
    }

    /// Reconnect round: one sync request to a random failed or reaped member or unreached
    /// seed (see the `antientropy` module).
    pub(super) fn on_reconnect(&mut self) {
        let next = self.jittered(self.config.reconnect_interval * 2);
        self.timers.set(Timer::Reconnect, self.now + next);
        if !self.lifecycle.running() {
            return;
        }
        self.table.watch_addrs(self.lifecycle.seeds());
        let target = self.sync.reconnect_round(
            self.now,
            &self.config,
            &self.table,
            self.lifecycle.seeds(),
            &mut self.rng,
        );
        if let Some(r) = target {
            let digest = digest_of(&self.table);
            let seq = r.seq;
            self.send(r.addr, r.id, Message::Sync { seq, digest }, None);
        }
    }

    /// Heartbeat round (see [`Detection::heartbeat_round`]).
    pub(super) fn on_heartbeat(&mut self, late_by: Duration) {
        let next = self.now + self.config.heartbeat_interval;
        self.timers.set(Timer::Heartbeat, next);
        self.detect(|d, v, _, out| d.heartbeat_round(v, late_by, out));
    }

    /// Periodic SWIM probe (see [`Detection::probe_round`]).
    pub(super) fn on_probe(&mut self) {
        let next = self.now + self.config.probe_interval;
        self.timers.set(Timer::Probe, next);
        self.detect(|d, v, rng, out| d.probe_round(v, rng, out));
    }

    /// Gossips at once when failure-detection news is queued, as often as dissemination
    /// allows; when it is too soon, the next regular round is pulled forward instead.
    pub(super) fn flush_urgent(&mut self) {
        if self.lifecycle.has_left() {
            return;
        }
        match self
            .gossip
            .urgent_round(self.now, self.config.gossip_interval)
        {
            UrgentRound::Idle => {}
            UrgentRound::NotBefore(at) => {
                if self.timers.get(Timer::Gossip).is_none_or(|t| t > at) {
                    self.timers.set(Timer::Gossip, at);
                }
            }
            UrgentRound::Now => {
                for id in self.random_peers(self.config.gossip_fanout) {
                    if self.gossip.is_empty() {
                        break;
                    }
                    self.send_to_member(id, Message::Gossip, None);
                }
            }
        }
    }

    pub(super) fn on_reap(&mut self) {
        self.timers
            .set(Timer::Reap, self.now + self.reap_interval());
        let cutoff = self.now - self.config.tombstone_ttl;
        for id in self.table.tombstones_before(cutoff) {
            if let Some((m, moved)) = self.table.remove(&id) {
                self.detection.slot_moved(moved);
                if m.state == MemberState::Failed {
                    self.sync.bury(id, m.info.gossip_addr().get(), self.now);
                }
            }
            self.gossip.remove(&id);
            self.detection.reaped(&id);
            self.events.push_back(Event::MemberReaped(id));
        }
    }

    pub(super) fn on_leave_done(&mut self) {
        self.lifecycle.left();
        self.timers = TimerTable::default();
        self.events.push_back(Event::LeftCluster);
    }
}
