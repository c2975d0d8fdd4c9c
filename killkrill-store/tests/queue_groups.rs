//! Tenant groups: a receiver routes each batch to its tenant's group, and a
//! worker assigned some groups sees only those groups' tenants. On memory
//! queues always, and on Redis streams (and a Redis Cluster) when their
//! URLs are set.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod queue_support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use killkrill_core::event::Tenant;
use killkrill_core::pipeline::{Batch, Queue};
use killkrill_store::queue::TenantGroupQueue;
use queue_support::*;

fn tenant_batch(id: u128, tenant: &str) -> Batch {
    let mut b = batch(id, 2);
    b.tenant = Tenant::new(tenant).unwrap();
    b
}

fn t(n: &str) -> Tenant {
    Tenant::new(n).unwrap()
}

/// Two groups: `big` = {acme, globex}, `rest` (the default) = everyone else.
async fn queues(kind: Kind, test: &str) -> Option<(Vec<(String, Arc<dyn Queue>)>, Vec<Fixture>)> {
    let mut out = Vec::new();
    let mut fixtures = Vec::new();
    for name in ["big", "rest"] {
        let f = make(
            kind,
            &format!("{test}-{name}"),
            Shape {
                batches: 100,
                events: 2,
                visibility: Duration::from_secs(10),
            },
        )
        .await?;
        out.push((name.to_owned(), f.q.clone()));
        fixtures.push(f);
    }
    Some((out, fixtures))
}

fn router(groups: &[(String, Arc<dyn Queue>)], serve: &[&str]) -> TenantGroupQueue {
    TenantGroupQueue::new(
        groups.to_vec(),
        &[("big".into(), vec![t("acme"), t("globex")])],
        "rest",
        &serve.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
        Duration::from_millis(50),
    )
    .unwrap()
}

fn tenants(ds: &[killkrill_core::pipeline::Delivery]) -> BTreeSet<String> {
    ds.iter()
        .map(|d| d.batch.tenant.as_str().to_owned())
        .collect()
}

async fn workers_see_only_their_groups(kind: Kind) {
    let Some((groups, fixtures)) = queues(kind, "groups").await else {
        return;
    };
    // A receiver: serves nothing in particular, routes everything.
    let receiver = router(&groups, &[]);
    assert_eq!(receiver.group_of(&t("acme")), "big");
    assert_eq!(receiver.group_of(&t("initech")), "rest");
    let sent = [
        (1, "acme"),
        (2, "initech"),
        (3, "globex"),
        (4, "default"),
        (5, "acme"),
        (6, "hooli"),
    ];
    for (id, tenant) in sent {
        receiver
            .try_enqueue(tenant_batch(id, tenant))
            .await
            .unwrap();
    }
    let big = router(&groups, &["big"]);
    let rest = router(&groups, &["rest"]);
    assert_eq!(big.served(), ["big"]);
    // Each worker drains what it can see; the other group's batches stay.
    let from_big = collect(&big, 3, Duration::from_secs(5)).await;
    assert!(
        big.dequeue(10, Duration::from_millis(200))
            .await
            .unwrap()
            .is_empty()
    );
    let from_rest = collect(&rest, 3, Duration::from_secs(5)).await;
    assert!(
        rest.dequeue(10, Duration::from_millis(200))
            .await
            .unwrap()
            .is_empty()
    );
    let mut big_ids = ids(&from_big);
    big_ids.sort_unstable();
    let mut rest_ids = ids(&from_rest);
    rest_ids.sort_unstable();
    assert_eq!(big_ids, [1, 3, 5]);
    assert_eq!(rest_ids, [2, 4, 6]);
    assert_eq!(
        tenants(&from_big),
        BTreeSet::from(["acme".into(), "globex".into()])
    );
    assert_eq!(
        tenants(&from_rest),
        BTreeSet::from(["default".into(), "hooli".into(), "initech".into()])
    );
    // Acks and nacks reach the queue that issued the delivery.
    let s = receiver.stats().await.unwrap();
    assert_eq!((s.batches, s.in_flight), (6, 6));
    rest.nack(from_rest[0].id, Duration::ZERO).await.unwrap();
    let again = collect(&rest, 1, Duration::from_secs(5)).await;
    assert_eq!(ids(&again), [from_rest[0].batch.id.as_u128()]);
    assert_eq!(again[0].attempts, 2);
    let all: Vec<_> = from_big.iter().map(|d| d.id).collect();
    big.ack(&all).await.unwrap();
    let all: Vec<_> = from_rest.iter().map(|d| d.id).collect();
    rest.ack(&all).await.unwrap();
    let s = receiver.stats().await.unwrap();
    assert_eq!((s.batches, s.in_flight), (0, 0));
    // A worker of both groups gets batches of both.
    receiver.try_enqueue(tenant_batch(7, "acme")).await.unwrap();
    receiver
        .try_enqueue(tenant_batch(8, "hooli"))
        .await
        .unwrap();
    let both = collect(&receiver, 2, Duration::from_secs(5)).await;
    let mut got = ids(&both);
    got.sort_unstable();
    assert_eq!(got, [7, 8]);
    let ids_both: Vec<_> = both.iter().map(|d| d.id).collect();
    receiver.ack(&ids_both).await.unwrap();
    for f in fixtures {
        f.finish().await;
    }
}

#[test]
fn bad_group_settings_are_refused() {
    let q = |n: &str| -> (String, Arc<dyn Queue>) {
        (
            n.to_owned(),
            Arc::new(killkrill_core::pipeline::MemoryQueue::new(
                killkrill_core::pipeline::MemoryQueueConfig {
                    max_events: 10,
                    max_bytes: 1 << 20,
                    visibility_timeout: Duration::from_secs(1),
                },
            )),
        )
    };
    let groups = vec![q("a"), q("b")];
    let ms = Duration::from_millis(10);
    let e = TenantGroupQueue::new(groups.clone(), &[], "c", &[], ms).unwrap_err();
    assert!(e.contains("\"c\""), "{e}");
    let e = TenantGroupQueue::new(groups.clone(), &[], "a", &["x".into()], ms).unwrap_err();
    assert!(e.contains("\"x\""), "{e}");
    let two = [
        ("a".to_owned(), vec![t("acme")]),
        ("b".to_owned(), vec![t("acme")]),
    ];
    let e = TenantGroupQueue::new(groups, &two, "a", &[], ms).unwrap_err();
    assert!(e.contains("acme") && e.contains("two"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_workers_see_only_their_groups() {
    workers_see_only_their_groups(Kind::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_workers_see_only_their_groups() {
    workers_see_only_their_groups(Kind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_workers_see_only_their_groups() {
    workers_see_only_their_groups(Kind::RedisCluster).await;
}
