//! Gray failures and flapping members (issue 16), end to end in the simulator, at a size CI
//! affords (the N = 100 and 1000 figures are in docs/detection.md, measured with
//! `shoal-sim gray` / `shoal-sim flipflop`): one gray member, as the 1 % of 100, and
//! three of 40 watching each other (as ten of 1000 do).
//! Each test asserts the targets:
//! - gray: removed within 30 s, at most 3 alive/not-alive moves per (healthy observer, gray
//!   member), no healthy member declared failed by anyone, every gray member alive everywhere
//!   within 15 s of the loss ending;
//! - flipflop: at most 4 moves per pair, alive while down at most 20 % of the down time, no
//!   healthy member declared failed.

use shoal_sim::scenarios::{flipflop, gray, Direction, GrayOpts, ScenarioOpts};
use shoal_sim::{fail, test_seed, test_seeds};
use std::time::Duration;

fn opts(nodes: usize, seed: u64, duration: Duration) -> ScenarioOpts {
    ScenarioOpts {
        nodes,
        seed,
        duration,
        check: true,
        ..ScenarioOpts::default()
    }
}

/// `nodes` members, `gray_pct` % of them (at least one) at 80 % loss in `direction` for
/// 120 s.
fn check_gray(nodes: usize, gray_pct: f64, direction: Direction, default_seed: u64) {
    check_gray_seed(nodes, gray_pct, direction, test_seed(default_seed));
}

/// [`check_gray`] on one seed.
fn check_gray_seed(nodes: usize, gray_pct: f64, direction: Direction, seed: u64) {
    let g = GrayOpts {
        loss_pct: 80.0,
        gray_pct,
        direction,
        ..GrayOpts::default()
    };
    let r = gray(&opts(nodes, seed, Duration::from_secs(120)), &g);
    let what = format!("gray {}: {r:?}", direction.name());
    if !r.ok() {
        fail(
            seed,
            &format!("did not converge, recover or check clean: {what}"),
        );
    }
    let expected = ((nodes as f64 * gray_pct / 100.0).round() as usize).max(1);
    if r.gray.len() != expected {
        fail(seed, &format!("expected {expected} gray members: {what}"));
    }
    if r.removed_p99_ms.is_none_or(|ms| ms > 30_000.0) {
        fail(
            seed,
            &format!("gray members not removed within 30 s: {what}"),
        );
    }
    if r.flaps_max > 3 {
        fail(
            seed,
            &format!("a gray member flapped more than 3 times: {what}"),
        );
    }
    if r.healthy_false_failures != 0 {
        fail(seed, &format!("healthy members declared failed: {what}"));
    }
    if r.recovered_ms.is_none_or(|ms| ms > 15_000.0) {
        fail(seed, &format!("gray members not back within 15 s: {what}"));
    }
}

#[test]
fn members_losing_80_percent_both_ways_are_removed_once_and_come_back() {
    check_gray(50, 1.0, Direction::Both, 161);
}

#[test]
fn members_losing_80_percent_of_ingress_are_removed_once_and_come_back() {
    check_gray(50, 1.0, Direction::In, 162);
}

#[test]
fn members_losing_80_percent_of_egress_are_removed_once_and_come_back() {
    check_gray(50, 1.0, Direction::Out, 163);
}

/// Three gray members of 40: each is failed for most of the loss, rejoins now and then and
/// is failed again within a second. Held for twice its outage (up to 2 min) when the loss
/// ended, none was back within 120 s; held twice its longest up phase, 9-14 s (seeds 1-6).
/// A gray observer held another gray member for what it had measured while sick itself: 4
/// seeds of 12 over 15 s, up to 102 s; with a sick node learning no history, 8.9-12.1 s on
/// seeds 1-40 (docs/detection.md).
///
/// Twelve seeds, not one: a hold depends on the member's flap history, which swings with
/// the trace, and seed 1 alone passed while those four did not. `SIM_SEED` runs one seed.
#[test]
fn several_gray_members_come_back_within_seconds() {
    for seed in test_seeds(12) {
        check_gray_seed(40, 7.5, Direction::Both, seed);
    }
}

/// Seed 100 of the sweep in docs/detection.md: a gray member failed for 108 s rejoined, then
/// was suspected and refuted at once again and again while held until the loss ended. Each
/// refutation alone is a blip that leaves no up phase on record, so it was held twice its
/// outage (2 min) after it had recovered; a run of them while held now ends the up phase
/// (`BLIP_RUN` in core's `damping.rs`): back within 9.2 s.
#[test]
fn a_gray_member_suspected_again_and_again_while_held_comes_back_within_seconds() {
    check_gray_seed(40, 7.5, Direction::Both, test_seed(100));
}

#[test]
fn members_whose_ingress_flaps_are_held_down_and_nobody_healthy_is_failed() {
    let seed = test_seed(164);
    let g = GrayOpts {
        flappers: 4,
        ..GrayOpts::default()
    };
    // 20 s down, 20 s up, four times.
    let r = flipflop(&opts(40, seed, Duration::from_secs(160)), &g);
    let what = format!("flipflop: {r:?}");
    if !r.ok() {
        fail(seed, &format!("did not converge or check clean: {what}"));
    }
    if r.flaps_max > 4 {
        fail(
            seed,
            &format!("a flapper flapped more than 4 times: {what}"),
        );
    }
    if r.alive_while_down_pct > 20.0 {
        fail(seed, &format!("flappers treated alive while down: {what}"));
    }
    if r.healthy_false_failures != 0 {
        fail(seed, &format!("healthy members declared failed: {what}"));
    }
}
