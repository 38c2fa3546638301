//! The swarm's partial failures (issue 16): *gray* members that lose a share of their packets
//! and *flapping* members whose ingress goes dead and comes back, again and again.
//!
//! Both are per-node loss in the network ([`crate::network::Network::set_node_loss`]), the
//! same mechanism the `gray` and `flipflop` scenarios use. Every decision and every drawn
//! length comes from the swarm's gray stream (see [`super::Knobs::draw_sick`]), never from the
//! main one, so a seed whose gray and flap odds are zero runs exactly as it did before these
//! faults existed.

use super::{below, chance, unit, Knobs};
use crate::cluster::Sim;
use rand_chacha::ChaCha8Rng;
use shoal_core::Timestamp;
use std::time::Duration;

/// Per gray decision that changes something: chance to heal a gray member rather than make
/// a new one (when one is gray and the cap leaves room for another).
const HEAL: f64 = 0.4;

/// One flapping member: ingress all dropped for `down`, then clear for `up`, repeating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Flap {
    down: Duration,
    up: Duration,
    /// In a down phase now.
    is_down: bool,
    /// When the current phase ends.
    next: Timestamp,
}

/// What one member suffers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Sick {
    /// Healthy (as far as these faults go).
    No,
    /// Loses `(ingress, egress)` of its packets.
    Gray(f64, f64),
    /// Flapping ingress.
    Flapping(Flap),
}

/// A change the caller must pass on to the checkers: node `node` became sick (`true`) or
/// healthy (`false`) at the current time.
pub type Change = (usize, bool);

/// The gray and flapping members of one run and their schedules.
#[derive(Clone, Debug)]
pub struct SickFaults {
    sick: Vec<Sick>,
    /// Most members sick at once: about 10 % of the cluster, at least one.
    cap: usize,
}

impl SickFaults {
    /// Nobody sick, in a cluster of `n`.
    pub fn new(n: usize) -> Self {
        SickFaults {
            sick: vec![Sick::No; n],
            cap: (n / 10).max(1),
        }
    }

    /// Whether node `i` is gray or flapping now.
    pub fn is_sick(&self, i: usize) -> bool {
        self.sick[i] != Sick::No
    }

    fn count(&self) -> usize {
        self.sick.iter().filter(|s| **s != Sick::No).count()
    }

    /// When the next flap phase ends, if anyone flaps.
    pub fn next_toggle(&self) -> Option<Timestamp> {
        self.sick
            .iter()
            .filter_map(|s| match s {
                Sick::Flapping(f) => Some(f.next),
                _ => None,
            })
            .min()
    }

    /// Moves every flapper whose phase ended by `sim.now` into its next phase.
    pub fn toggle_due(&mut self, sim: &mut Sim) {
        let now = sim.now;
        for (i, s) in self.sick.iter_mut().enumerate() {
            if let Sick::Flapping(f) = s {
                while f.next <= now {
                    f.is_down = !f.is_down;
                    f.next = f.next + if f.is_down { f.down } else { f.up };
                }
                sim.net
                    .set_node_loss(i, if f.is_down { 1.0 } else { 0.0 }, 0.0);
            }
        }
    }

    /// One fault decision: maybe make a member gray or heal one, maybe make one flap or heal
    /// one. Returns the changes (for the checkers); all draws come from `rng`.
    pub fn decide(&mut self, sim: &mut Sim, knobs: &Knobs, rng: &mut ChaCha8Rng) -> Vec<Change> {
        let mut changes = Vec::new();
        if knobs.gray > 0.0 && chance(rng, knobs.gray) {
            let gray: Vec<usize> = (0..self.sick.len())
                .filter(|&i| matches!(self.sick[i], Sick::Gray(..)))
                .collect();
            let full = self.count() >= self.cap;
            if !gray.is_empty() && (full || chance(rng, HEAL)) {
                let x = gray[below(rng, gray.len() as u64) as usize];
                changes.push(self.heal(sim, x));
            } else if let Some(x) = self.pick_healthy(sim, rng).filter(|_| !full) {
                let p = 0.4 + unit(rng) * 0.5;
                let (ingress, egress) = match below(rng, 3) {
                    0 => (p, p),
                    1 => (p, 0.0),
                    _ => (0.0, p),
                };
                self.sick[x] = Sick::Gray(ingress, egress);
                sim.net.set_node_loss(x, ingress, egress);
                changes.push((x, true));
            }
        }
        if knobs.flap > 0.0 && chance(rng, knobs.flap) {
            let flapping: Vec<usize> = (0..self.sick.len())
                .filter(|&i| matches!(self.sick[i], Sick::Flapping(..)))
                .collect();
            let full = self.count() >= self.cap;
            if !flapping.is_empty() && (full || chance(rng, HEAL)) {
                let x = flapping[below(rng, flapping.len() as u64) as usize];
                changes.push(self.heal(sim, x));
            } else if let Some(x) = self.pick_healthy(sim, rng).filter(|_| !full) {
                let down = Duration::from_millis(1_000 + below(rng, 9_001));
                let up = Duration::from_millis(1_000 + below(rng, 9_001));
                self.sick[x] = Sick::Flapping(Flap {
                    down,
                    up,
                    is_down: true,
                    next: sim.now + down,
                });
                sim.net.set_node_loss(x, 1.0, 0.0);
                changes.push((x, true));
            }
        }
        changes
    }

    /// A random running member that is neither gray nor flapping.
    fn pick_healthy(&self, sim: &Sim, rng: &mut ChaCha8Rng) -> Option<usize> {
        let ok: Vec<usize> = (0..self.sick.len())
            .filter(|&i| self.sick[i] == Sick::No && sim.is_running(i))
            .collect();
        (!ok.is_empty()).then(|| ok[below(rng, ok.len() as u64) as usize])
    }

    fn heal(&mut self, sim: &mut Sim, x: usize) -> Change {
        self.sick[x] = Sick::No;
        if self.count() == 0 {
            // Back to no per-node loss at all: the network stops drawing for it.
            sim.net.clear_node_loss();
        } else {
            sim.net.set_node_loss(x, 0.0, 0.0);
        }
        (x, false)
    }

    /// Heals everyone (the liveness phase). Returns the nodes healed.
    pub fn lift(&mut self, sim: &mut Sim) -> Vec<usize> {
        let healed: Vec<usize> = (0..self.sick.len()).filter(|&i| self.is_sick(i)).collect();
        self.sick.fill(Sick::No);
        sim.net.clear_node_loss();
        healed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::SimConfig;
    use rand_core::SeedableRng;

    fn knobs(gray: f64, flap: f64) -> Knobs {
        let mut k = Knobs::from_seed(&mut ChaCha8Rng::seed_from_u64(1));
        k.gray = gray;
        k.flap = flap;
        k
    }

    #[test]
    fn at_most_a_tenth_sick_and_healing_clears_the_loss() {
        let mut sim = Sim::new(SimConfig::lan(20, 3));
        let mut s = SickFaults::new(20);
        let k = knobs(1.0, 1.0);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut made = 0;
        for _ in 0..200 {
            let changes = s.decide(&mut sim, &k, &mut rng);
            for (n, &(x, sick)) in changes.iter().enumerate() {
                if changes[n + 1..].iter().any(|&(y, _)| y == x) {
                    // Healed from gray and made to flap in the same decision.
                    continue;
                }
                assert_eq!(s.is_sick(x), sick);
                made += usize::from(sick);
                let (i, e) = sim.net.node_loss(x);
                assert_eq!(sick, i > 0.0 || e > 0.0, "node {x}: loss ({i}, {e})");
            }
            assert!(s.count() <= 2, "20 members: at most 2 sick at once");
        }
        assert!(
            made > 10,
            "faults are made and healed over and over ({made})"
        );
        let before = s.count();
        assert_eq!(s.lift(&mut sim).len(), before);
        assert_eq!(s.count(), 0);
        assert_eq!(sim.net.node_loss(0), (0.0, 0.0));
    }

    #[test]
    fn a_flapper_alternates_dead_and_clear_ingress() {
        let mut sim = Sim::new(SimConfig::lan(3, 3));
        let mut s = SickFaults::new(3);
        let k = knobs(0.0, 1.0);
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let changes = s.decide(&mut sim, &k, &mut rng);
        let [(x, true)] = changes[..] else {
            panic!("one flapper made: {changes:?}")
        };
        assert_eq!(sim.net.node_loss(x), (1.0, 0.0), "starts down");
        let mut seen = vec![];
        for _ in 0..4 {
            let t = s.next_toggle().expect("flapping");
            let gap = t.saturating_since(sim.now);
            assert!(gap >= Duration::from_secs(1) && gap <= Duration::from_secs(10));
            sim.run_until(t, |_, _, _| {});
            s.toggle_due(&mut sim);
            seen.push(sim.net.node_loss(x).0);
        }
        assert_eq!(seen, vec![0.0, 1.0, 0.0, 1.0]);
    }

    #[test]
    fn seeds_without_sick_faults_keep_every_knob() {
        let (mut on, mut only) = (0, 0);
        for seed in 1..=400u64 {
            let draw = |sick: bool| {
                let mut k = Knobs::from_seed(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x766f_7072));
                k.draw_hostile(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x7265_706c_6179));
                if sick {
                    k.draw_sick(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x6772_6179_666c_6170));
                }
                k
            };
            let (old, new) = (draw(false), draw(true));
            if new.gray == 0.0 && new.flap == 0.0 {
                assert_eq!(old.to_string(), new.to_string());
                continue;
            }
            on += 1;
            assert_eq!(
                (new.nodes, new.chaos, new.keyed),
                (old.nodes, old.chaos, old.keyed)
            );
            if new.sick_only {
                only += 1;
                assert_eq!((new.crash, new.pause), (0.0, 0.0));
                assert_eq!(new.partition, super::super::PartitionMode::None);
            } else {
                assert_eq!(
                    (new.crash, new.pause, new.partition),
                    (old.crash, old.pause, old.partition)
                );
            }
        }
        assert!((150..250).contains(&on), "about half the seeds: {on}");
        assert!((30..100).contains(&only), "a third of those: {only}");
    }
}
