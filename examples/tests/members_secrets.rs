//! `members` joins a cluster started from a secrets directory using the same `--secrets-dir`
//! option as the director, worker and client (in-process, loopback); without the cluster's
//! key the join fails with a message naming the likely causes.

use clap::Parser;
use shoal_examples::common::{cluster_config, create_or_load_secrets, Preset};
use shoal_examples::inspect::{inspect, MembersArgs};
use shoal_tokio::{Cluster, ClusterError};
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(15);

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    members: MembersArgs,
}

/// A fresh private directory under the temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        TempDir(std::env::temp_dir().join(format!(
            "shoal-members-{tag}-{}-{nanos:08x}",
            std::process::id()
        )))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn parse(args: &[&str]) -> MembersArgs {
    Cli::try_parse_from(std::iter::once("members").chain(args.iter().copied()))
        .expect("the members command line parses")
        .members
}

#[tokio::test(flavor = "current_thread")]
async fn members_joins_with_the_directors_secrets_dir() {
    let dir = TempDir::new("ok");
    let secrets = create_or_load_secrets(&dir.0).unwrap();
    let director = Cluster::start(
        cluster_config(
            "director",
            "127.0.0.1:0".parse().unwrap(),
            Preset::Local,
            secrets.key,
        )
        .with_tags([("role", "director")]),
    )
    .await
    .unwrap();
    let seed = director.gossip_addr().to_string();
    let args = parse(&[
        "--seed",
        &seed,
        "--secrets-dir",
        dir.0.to_str().unwrap(),
        "--quiet-ms",
        "200",
        "--wait-ms",
        "3000",
    ]);
    let opts = args.to_options().unwrap();
    assert_eq!(
        opts.cluster_key,
        Some(secrets.key),
        "the key of the directory"
    );
    let view = timeout(WAIT, inspect(&opts))
        .await
        .expect("inspection is bounded")
        .expect("the inspector joins with the directory's key");
    let names: Vec<&str> = view.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["director"]);
    assert_eq!(view.members[0].state, "alive");
    assert_eq!(
        view.members[0].tags.get("role").map(String::as_str),
        Some("director")
    );

    // The hex key as `--cluster-key` is the accepted alternative and reaches the same cluster.
    let hex = shoal_examples::keys::encode_hex(&secrets.key);
    let args = parse(&["--seed", &seed, "--cluster-key", &hex, "--quiet-ms", "200"]);
    let view = timeout(WAIT, inspect(&args.to_options().unwrap()))
        .await
        .expect("inspection is bounded")
        .expect("the inspector joins with --cluster-key");
    let rows: Vec<(&str, &str)> = view
        .members
        .iter()
        .map(|m| (m.name.as_str(), m.state.as_str()))
        .collect();
    assert!(rows.contains(&("director", "alive")), "{rows:?}");
    // The first inspector left gracefully: the cluster keeps it as left, not failed.
    assert!(
        rows.iter()
            .all(|&(name, state)| name == "director" || state == "left"),
        "{rows:?}"
    );

    // Another directory's key: the seed drops the join, and the error says why it might.
    let other = TempDir::new("wrong");
    create_or_load_secrets(&other.0).unwrap();
    let args = parse(&[
        "--seed",
        &seed,
        "--secrets-dir",
        other.0.to_str().unwrap(),
        "--join-timeout-ms",
        "1000",
    ]);
    let err = timeout(WAIT, inspect(&args.to_options().unwrap()))
        .await
        .expect("inspection is bounded")
        .expect_err("a wrong key gets no answer");
    let text = err.to_string();
    assert!(
        matches!(
            err,
            shoal_examples::inspect::InspectError::Cluster(ClusterError::JoinTimeout(_))
        ),
        "{err:?}"
    );
    for cause in ["cluster key", "listening", "firewall"] {
        assert!(text.contains(cause), "{text}");
    }
    director.shutdown().await.unwrap();
}

#[test]
fn an_explicit_secrets_dir_without_a_key_is_an_error() {
    let dir = TempDir::new("missing");
    let args = parse(&[
        "--seed",
        "127.0.0.1:1",
        "--secrets-dir",
        dir.0.to_str().unwrap(),
    ]);
    let err = args.to_options().unwrap_err().to_string();
    assert!(err.contains(dir.0.to_str().unwrap()), "{err}");
    assert!(err.contains("--secrets-dir"), "{err}");
}
