//! The security suite of `api/tests/security/suite/` over the ClickHouse reader (what API
//! replicas serve from), against the real server with a database of this test's own: tenant
//! isolation on every route, injection through every parameter that reaches SQL, malformed
//! input. After the injections the tables are all there with the rows they had.

use crate::common;
#[path = "../api/tests/security/suite/mod.rs"]
mod suite;

use std::sync::Arc;
use std::time::Duration;

use api::limits::HttpLimits;
use pipeline::profile::ContactProfile;
use pipeline::sink::{AcceptedEvent, PartitionOutput, ResultSink, ScoreChange};
use sinks::clickhouse::migrate::migrate;
use sinks::clickhouse::{ClickHouseConfig, ClickHouseReader, ClickHouseSink};
use suite::fixture::{self, Server, Store};

struct ClickHouse {
    cfg: ClickHouseConfig,
    sink: ClickHouseSink,
}

impl Store for ClickHouse {
    async fn add(
        &self,
        profiles: Vec<ContactProfile>,
        events: Vec<AcceptedEvent>,
        changes: Vec<ScoreChange>,
    ) {
        let out = PartitionOutput {
            partition: 0,
            events,
            profiles: profiles.into_iter().map(Into::into).collect(),
            changes,
            ..Default::default()
        };
        self.sink.write(&out).await.expect("the batch is written");
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        let cfg = self.cfg.clone();
        // Best effort, on a runtime of its own: the test's may be shutting down.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Runtime::new().map(|rt| rt.block_on(common::drop_database(&cfg)))
        })
        .join();
    }
}

/// A migrated database of this test's own with both businesses, and the API over it.
async fn setup() -> (Server, ClickHouse) {
    let cfg = common::clickhouse();
    migrate(&cfg)
        .await
        .expect("ClickHouse at 127.0.0.1:8123 (or KEYFLOW_TEST_CLICKHOUSE_URL)");
    let sink = ClickHouseSink::new(&cfg, cfg.url.as_deref().unwrap());
    let store = ClickHouse { cfg, sink };
    fixture::load(&store).await;
    let reader = ClickHouseReader::new(common::ch_client(&store.cfg), Duration::ZERO);
    (
        fixture::serve(Arc::new(reader), HttpLimits::default()).await,
        store,
    )
}

/// Rows per table, and the tables themselves.
async fn tables(cfg: &ClickHouseConfig) -> Vec<(String, u64)> {
    let client = common::ch_client(cfg);
    let names: Vec<String> = client
        .query("SELECT name FROM system.tables WHERE database = ? AND engine NOT LIKE '%View' ORDER BY name")
        .bind(&cfg.database)
        .fetch_all()
        .await
        .unwrap();
    let mut out = Vec::new();
    for name in names {
        let n: u64 = client
            .query("SELECT count() FROM ?")
            .bind(clickhouse::sql::Identifier(&name))
            .fetch_one()
            .await
            .unwrap();
        out.push((name, n));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_tenant_isolation_on_every_route() {
    let (server, store) = setup().await;
    suite::isolation::keys_are_required_everywhere(&server).await;
    suite::isolation::other_business_is_forbidden(&server).await;
    suite::isolation::own_routes_never_show_the_other(&server).await;
    suite::isolation::businesses_list_is_per_key(&server).await;
    suite::isolation::search_and_segments_stay_home(&server).await;
    suite::isolation::same_contact_id_reads_its_own_business(&server).await;
    suite::isolation::actions_reach_own_contacts_only(&server).await;
    suite::isolation::timeline_stream_stays_home(&server, &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_injection_has_no_effect() {
    let (server, store) = setup().await;
    suite::injection::bound_ids_round_trip(&server).await;
    let before = tables(&store.cfg).await;
    assert!(
        before.iter().any(|(t, n)| t == "events" && *n > 0),
        "{before:?}"
    );
    let sent = suite::injection::injection_has_no_effect(&server).await;
    assert!(sent > 1000, "only {sent} injection requests");
    assert_eq!(tables(&store.cfg).await, before, "tables or rows changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_malformed_input_gets_a_4xx_naming_it() {
    let (server, _store) = setup().await;
    let max_body = HttpLimits::default().max_body_bytes;
    suite::malformed::malformed_input_gets_a_4xx_naming_it(&server, max_body).await;
}
