//! Lifecycle: joining through seeds with backoff, running, leaving, left.
//!
//! Rule: **a join asks one seed at a time, moving to the next seed after a backoff that doubles
//! from `join_retry_initial` up to `join_retry_max`, until one answers; a leaving or left node
//! accepts no more commands.** The seeds are remembered after joining: anti-entropy's reconnect
//! round contacts those that are not live members, so groups that formed apart (each joined
//! through the other's absent seeds) still find each other.

use crate::config::Config;
use crate::CommandError;
use core::net::SocketAddr;
use core::time::Duration;

/// Where the node is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Status {
    Running,
    Leaving,
    Left,
}

#[derive(Clone, Debug)]
struct Joining {
    seeds: Vec<SocketAddr>,
    next: usize,
    attempt: u32,
}

/// The node's status, its pending join and the seeds it was given.
#[derive(Debug)]
pub(super) struct Lifecycle {
    status: Status,
    joining: Option<Joining>,
    seeds: Vec<SocketAddr>,
}

impl Lifecycle {
    pub(super) fn new() -> Self {
        Lifecycle {
            status: Status::Running,
            joining: None,
            seeds: Vec::new(),
        }
    }

    pub(super) fn running(&self) -> bool {
        self.status == Status::Running
    }

    pub(super) fn has_left(&self) -> bool {
        self.status == Status::Left
    }

    pub(super) fn is_joining(&self) -> bool {
        self.joining.is_some()
    }

    /// The seeds of the last join, kept after it succeeded.
    pub(super) fn seeds(&self) -> &[SocketAddr] {
        &self.seeds
    }

    /// Commands are refused once the node leaves.
    pub(super) fn check_running(&self) -> Result<(), CommandError> {
        if self.running() {
            Ok(())
        } else {
            Err(CommandError::Left)
        }
    }

    /// Starts joining through `seeds` (this node's own address `me` left out).
    pub(super) fn join(
        &mut self,
        seeds: &[SocketAddr],
        me: SocketAddr,
    ) -> Result<(), CommandError> {
        self.check_running()?;
        let seeds: Vec<SocketAddr> = seeds.iter().copied().filter(|s| *s != me).collect();
        if seeds.is_empty() {
            return Err(CommandError::NoSeeds);
        }
        self.seeds = seeds.clone();
        self.joining = Some(Joining {
            seeds,
            next: 0,
            attempt: 0,
        });
        Ok(())
    }

    /// The seed the current join attempt goes to, and how long to wait before the next.
    pub(super) fn attempt(&self, config: &Config) -> Option<(SocketAddr, Duration)> {
        let j = self.joining.as_ref()?;
        let seed = j.seeds[j.next % j.seeds.len()];
        let backoff = config
            .join_retry_initial
            .saturating_mul(1u32 << j.attempt.min(16))
            .min(config.join_retry_max);
        Some((seed, backoff))
    }

    /// The retry timer fired: move on to the next seed with a longer backoff. Returns whether
    /// a join is still pending.
    pub(super) fn next_attempt(&mut self) -> bool {
        let Some(j) = &mut self.joining else {
            return false;
        };
        j.attempt = j.attempt.saturating_add(1);
        j.next = j.next.wrapping_add(1);
        true
    }

    /// A join reply arrived; returns whether a join was pending (and is now done).
    pub(super) fn joined(&mut self) -> bool {
        self.joining.take().is_some()
    }

    /// Starts leaving (any pending join is abandoned).
    pub(super) fn leave(&mut self) -> Result<(), CommandError> {
        self.check_running()?;
        self.status = Status::Leaving;
        self.joining = None;
        Ok(())
    }

    /// The leave linger ended: the node is gone.
    pub(super) fn left(&mut self) {
        self.status = Status::Left;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn join_rotates_seeds_with_doubling_capped_backoff() {
        let config = Config::local();
        let mut l = Lifecycle::new();
        l.join(&[a(1), a(2), a(9)], a(9)).unwrap();
        assert_eq!(l.seeds(), &[a(1), a(2)]);
        let mut seen = Vec::new();
        for _ in 0..20 {
            seen.push(l.attempt(&config).unwrap());
            assert!(l.next_attempt());
        }
        assert_eq!(seen[0], (a(1), config.join_retry_initial));
        assert_eq!(seen[1], (a(2), config.join_retry_initial * 2));
        assert_eq!(seen[2].0, a(1));
        assert!(seen.iter().all(|(_, b)| *b <= config.join_retry_max));
        assert_eq!(seen[19].1, config.join_retry_max);
        assert!(l.joined());
        assert!(!l.joined(), "a second reply finishes nothing");
        assert_eq!(l.attempt(&config), None);
        assert_eq!(l.seeds(), &[a(1), a(2)], "seeds are kept after joining");
    }

    #[test]
    fn joining_only_through_itself_is_refused_and_leaving_ends_commands() {
        let mut l = Lifecycle::new();
        assert_eq!(l.join(&[a(9)], a(9)), Err(CommandError::NoSeeds));
        l.join(&[a(1)], a(9)).unwrap();
        l.leave().unwrap();
        assert!(!l.is_joining());
        assert!(!l.running() && !l.has_left(), "leaving");
        assert_eq!(l.leave(), Err(CommandError::Left));
        assert_eq!(l.join(&[a(1)], a(9)), Err(CommandError::Left));
        l.left();
        assert!(l.has_left());
    }
}
