//! Pick cost: one `select` plus its `finish`, with 100 matching candidates, per strategy.
//!
//! `cargo bench -p shoal-core --bench select -- --quick`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use shoal_core::{Balancer, Filter, MemberState, NodeId, Outcome, Strategy, Tags, Timestamp};

fn setup(strategy: Strategy, weighted: bool) -> Balancer {
    let mut b = Balancer::with_strategy(strategy);
    for i in 0..100u32 {
        let weight = (1 + i % 4).to_string();
        let mut pairs = vec![("role", "worker"), ("zone", "eu")];
        if weighted {
            pairs.push(("weight", &weight));
        }
        let tags = Tags::from_pairs(pairs).expect("valid tags");
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&i.to_le_bytes());
        b.upsert_member(NodeId(id), MemberState::Alive, &tags, None);
    }
    // Some non-matching members too, so the filter does work.
    for i in 100..120u32 {
        let tags = Tags::from_pairs([("role", "director")]).expect("valid tags");
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&i.to_le_bytes());
        b.upsert_member(NodeId(id), MemberState::Alive, &tags, None);
    }
    b
}

fn bench_select(c: &mut Criterion) {
    let filter = Filter::parse("role=worker").expect("valid filter");
    for weighted in [false, true] {
        let mut group = c.benchmark_group(if weighted {
            "select+finish/100/weighted"
        } else {
            "select+finish/100"
        });
        for strategy in Strategy::ALL {
            let mut b = setup(strategy, weighted);
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            // Keep ~2 calls in flight per worker so in-flight counts differ.
            let mut outstanding = std::collections::VecDeque::new();
            let mut now = 1_000_000u64;
            group.bench_function(strategy.name(), |bench| {
                bench.iter(|| {
                    now += 10;
                    let t = Timestamp::from_micros(now);
                    let lease = b.select(t, &filter, &mut rng).expect("a worker");
                    outstanding.push_back(lease.id);
                    if outstanding.len() > 200 {
                        let id = outstanding.pop_front().expect("not empty");
                        b.finish(id, Outcome::Completed, t).expect("live lease");
                    }
                    black_box(lease.worker)
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_select);
criterion_main!(benches);
