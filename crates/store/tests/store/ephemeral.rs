//! `EphemeralStore`: the same bodies on `MemoryStore` and `RedisStore`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sesame_core::error::StoreError;
use sesame_core::ports::{
    linked_value, AttemptReservation, EphemeralStore, MapEntry, SetMember, Writes,
};
use sesame_store::testing::{random_prefix, skip_or_fail, test_redis_url};
use sesame_store::{RedisStore, StoreSetupError};
use time::macros::datetime;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Redis operation timeout in tests.
const OP_TIMEOUT: Duration = Duration::from_secs(2);

/// A fixed point in time; tests move from it explicitly.
const T0: OffsetDateTime = datetime!(2026-11-22 10:00:00 UTC);

/// The lockout window of the tests (15 minutes, as in the security spec).
const WINDOW: Duration = Duration::from_secs(900);

fn at(secs: i64) -> OffsetDateTime {
    T0 + time::Duration::seconds(secs)
}

fn counted(attempt: u32) -> AttemptReservation {
    AttemptReservation {
        attempt,
        locked_until: None,
    }
}

fn locked(until: OffsetDateTime) -> AttemptReservation {
    AttemptReservation {
        attempt: 0,
        locked_until: Some(until),
    }
}

/// A Redis store with a prefix of its own, or `None` (test skipped) if Redis does not answer.
async fn redis_store() -> Option<RedisStore> {
    match RedisStore::connect(&test_redis_url(), &random_prefix(), OP_TIMEOUT).await {
        Ok(store) => Some(store),
        Err(e) => {
            skip_or_fail("Redis", &e);
            None
        }
    }
}

/// Generates, for each body `name(store)`, the tests `memory::name` and `redis::name`.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(std::sync::Arc::new(sesame_store::MemoryStore::new())).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(store) = super::redis_store().await else {
                        return;
                    };
                    super::$name(std::sync::Arc::new(store)).await;
                }
            )*
        }
    };
}

on_both_stores!(
    a_value_is_put_read_and_replaced,
    take_returns_a_value_once,
    take_linked_takes_once_and_reads_the_linked_entry,
    take_and_put_writes_only_for_the_one_caller_that_takes,
    exactly_one_of_100_concurrent_takes_gets_the_value,
    put_new_stores_only_when_the_key_is_absent,
    replace_writes_only_over_a_live_value,
    put_new_with_map_entry_stores_and_records_in_one_step_or_neither,
    writes_while_live_are_made_all_together_only_while_the_guard_lives,
    a_write_racing_the_guards_end_is_either_refused_or_seen_by_it,
    a_map_keeps_the_latest_value_of_each_field_and_is_taken_once,
    a79_a_map_at_its_most_fields_displaces_one_for_a_new_field,
    exactly_one_of_100_concurrent_put_new_wins,
    delete_reports_whether_the_key_existed,
    values_and_sets_expire_after_their_ttl,
    set_add_extends_but_never_shortens_the_lifetime_of_a_set,
    set_members_are_added_removed_and_listed,
    attempts_are_counted_from_1_to_n,
    counters_of_different_keys_are_independent,
    a_new_window_starts_once_the_window_has_passed,
    a_lock_holds_until_now_passes_its_end_then_the_counter_is_forgotten,
    a_lock_ending_within_a_second_is_rounded_up,
    ranks_of_200_concurrent_attempts_are_1_to_200_each_once,
    clearing_forgets_the_counter_and_the_lock,
    forgiving_gives_back_one_attempt_but_never_goes_below_zero,
    using_a_key_as_the_wrong_kind_is_corrupt_data,
    the_store_answers_ping,
);

async fn a_value_is_put_read_and_replaced(store: Arc<dyn EphemeralStore>) {
    assert_eq!(store.get("k").await.unwrap(), None);
    store.put("k", "v1", Duration::from_secs(60)).await.unwrap();
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some("v1"));
    store.put("k", "v2", Duration::from_secs(60)).await.unwrap();
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some("v2"));
    // Reading does not consume.
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some("v2"));
    // Any text survives the round trip.
    let odd = "é\u{0}\n {\"json\": [1]} ∞";
    store
        .put("odd", odd, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(store.get("odd").await.unwrap().as_deref(), Some(odd));
}

async fn take_returns_a_value_once(store: Arc<dyn EphemeralStore>) {
    store
        .put("ST-1", "alice", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(store.take("ST-1").await.unwrap().as_deref(), Some("alice"));
    assert_eq!(store.take("ST-1").await.unwrap(), None);
    assert_eq!(store.get("ST-1").await.unwrap(), None);
    assert_eq!(store.take("never-there").await.unwrap(), None);
}

async fn take_linked_takes_once_and_reads_the_linked_entry(store: Arc<dyn EphemeralStore>) {
    let ttl = Duration::from_secs(10);
    store.put("session", "live", ttl).await.unwrap();
    store.put("marker", "revoked", ttl).await.unwrap();
    let payload = "{\"json\": \"with\\n and \\u0000\"}\nsecond line";
    store
        .put(
            "ticket",
            &linked_value(&["session", "absent", "marker"], payload),
            ttl,
        )
        .await
        .unwrap();
    let expected = (
        payload.to_owned(),
        vec![Some("live".to_owned()), None, Some("revoked".to_owned())],
    );
    assert_eq!(
        store.get_linked("ticket").await.unwrap().as_ref(),
        Some(&expected),
        "reading does not consume"
    );
    assert_eq!(store.take_linked("ticket").await.unwrap(), Some(expected));
    assert_eq!(
        store.take_linked("ticket").await.unwrap(),
        None,
        "taken once"
    );
    assert_eq!(store.get_linked("ticket").await.unwrap(), None);
    assert_eq!(store.get("session").await.unwrap().as_deref(), Some("live"));
    // A value without links is all payload.
    store.put("plain", "no link", ttl).await.unwrap();
    assert_eq!(
        store.take_linked("plain").await.unwrap(),
        Some(("no link".to_owned(), Vec::new()))
    );
    assert_eq!(store.take_linked("never-there").await.unwrap(), None);
}

async fn take_and_put_writes_only_for_the_one_caller_that_takes(store: Arc<dyn EphemeralStore>) {
    let ttl = Duration::from_secs(10);
    assert_eq!(
        store
            .take_and_put("old", &[("new", "successor", ttl)])
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.get("new").await.unwrap(),
        None,
        "nothing taken: nothing put"
    );
    store.put("old", "token", ttl).await.unwrap();
    let racers = (0..50).map(|i| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let value = format!("successor-{i}");
            let record = format!("record-{i}");
            let puts = [
                ("new", value.as_str(), Duration::from_secs(10)),
                ("new-record", record.as_str(), Duration::from_secs(10)),
            ];
            store
                .take_and_put("old", &puts)
                .await
                .unwrap()
                .map(|taken| (taken, i))
        })
    });
    let mut winners = Vec::new();
    for racer in racers {
        if let Some(won) = racer.await.unwrap() {
            winners.push(won);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let (taken, i) = winners.remove(0);
    assert_eq!(taken, "token");
    assert_eq!(
        store.get("new").await.unwrap(),
        Some(format!("successor-{i}"))
    );
    assert_eq!(
        store.get("new-record").await.unwrap(),
        Some(format!("record-{i}"))
    );
    assert_eq!(store.get("old").await.unwrap(), None);
}

async fn exactly_one_of_100_concurrent_takes_gets_the_value(store: Arc<dyn EphemeralStore>) {
    store
        .put("ST-race", "alice", Duration::from_secs(10))
        .await
        .unwrap();
    let takers: Vec<_> = (0..100)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.take("ST-race").await })
        })
        .collect();
    let mut winners = 0;
    for taker in takers {
        if let Some(value) = taker.await.unwrap().unwrap() {
            assert_eq!(value, "alice");
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

async fn put_new_stores_only_when_the_key_is_absent(store: Arc<dyn EphemeralStore>) {
    assert!(store
        .put_new("n", "first", Duration::from_secs(60))
        .await
        .unwrap());
    assert!(!store
        .put_new("n", "second", Duration::from_secs(60))
        .await
        .unwrap());
    assert_eq!(store.get("n").await.unwrap().as_deref(), Some("first"));
    store.delete("n").await.unwrap();
    assert!(store
        .put_new("n", "third", Duration::from_secs(60))
        .await
        .unwrap());
    assert_eq!(store.get("n").await.unwrap().as_deref(), Some("third"));
}

async fn replace_writes_only_over_a_live_value(store: Arc<dyn EphemeralStore>) {
    // Nothing there: nothing written (a session ended meanwhile stays ended).
    assert!(!store
        .replace("r", "back", Duration::from_secs(60))
        .await
        .unwrap());
    assert_eq!(store.get("r").await.unwrap(), None);
    store.put("r", "v1", Duration::from_secs(60)).await.unwrap();
    assert!(store
        .replace("r", "v2", Duration::from_millis(300))
        .await
        .unwrap());
    assert_eq!(store.get("r").await.unwrap().as_deref(), Some("v2"));
    // The new lifetime is the one given.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store.get("r").await.unwrap(), None);
    assert!(!store
        .replace("r", "v3", Duration::from_secs(60))
        .await
        .unwrap());
    assert_eq!(store.get("r").await.unwrap(), None);
    // Taken: gone for good.
    store.put("t", "v1", Duration::from_secs(60)).await.unwrap();
    store.take("t").await.unwrap();
    assert!(!store
        .replace("t", "v2", Duration::from_secs(60))
        .await
        .unwrap());
    assert_eq!(store.get("t").await.unwrap(), None);
}

fn entry(field: &str, value: &str, ttl: Duration) -> MapEntry {
    MapEntry {
        map: "given".to_owned(),
        field: field.to_owned(),
        value: value.to_owned(),
        ttl,
        max_fields: 10,
    }
}

async fn put_new_with_map_entry_stores_and_records_in_one_step_or_neither(
    store: Arc<dyn EphemeralStore>,
) {
    let minute = Duration::from_secs(60);
    assert!(store
        .put_new_with_map_entry("ST-1", "grant-1", minute, &entry("app", "ST-1", minute))
        .await
        .unwrap());
    assert_eq!(store.get("ST-1").await.unwrap().as_deref(), Some("grant-1"));
    // The key is taken: nothing stored, nothing recorded.
    assert!(!store
        .put_new_with_map_entry("ST-1", "grant-2", minute, &entry("other", "ST-2", minute))
        .await
        .unwrap());
    assert_eq!(store.get("ST-1").await.unwrap().as_deref(), Some("grant-1"));
    // The map lives at least as long as asked, and a shorter TTL never shortens it.
    let short = Duration::from_millis(200);
    assert!(store
        .put_new_with_map_entry("ST-3", "grant-3", minute, &entry("app", "ST-3", short))
        .await
        .unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        store.map_take("given").await.unwrap(),
        vec!["ST-3"],
        "ST-3 replaced ST-1 under the same field; ST-2 was never recorded"
    );
}

async fn a_map_keeps_the_latest_value_of_each_field_and_is_taken_once(
    store: Arc<dyn EphemeralStore>,
) {
    let minute = Duration::from_secs(60);
    assert!(store.map_take("given").await.unwrap().is_empty());
    for (field, value) in [("a", "1"), ("b", "2"), ("a", "3"), ("c", "é\n{\"x\":[1]}")] {
        store.map_put(&entry(field, value, minute)).await.unwrap();
    }
    let mut values = store.map_take("given").await.unwrap();
    values.sort();
    assert_eq!(values, vec!["2", "3", "é\n{\"x\":[1]}"]);
    assert!(store.map_take("given").await.unwrap().is_empty());
    assert!(!store.delete("given").await.unwrap());
    // A map expires with its TTL.
    store
        .map_put(&entry("a", "1", Duration::from_millis(200)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(store.map_take("given").await.unwrap().is_empty());
}

async fn a79_a_map_at_its_most_fields_displaces_one_for_a_new_field(
    store: Arc<dyn EphemeralStore>,
) {
    let minute = Duration::from_secs(60);
    for i in 0..10 {
        store
            .map_put(&entry(&format!("f{i}"), &format!("v{i}"), minute))
            .await
            .unwrap();
    }
    // Full: a field already there is replaced in place, nothing displaced.
    store.map_put(&entry("f3", "v3'", minute)).await.unwrap();
    // A thousand new fields later the map still holds ten, the last one among them.
    for i in 10..1010 {
        store
            .map_put(&entry(&format!("f{i}"), &format!("v{i}"), minute))
            .await
            .unwrap();
    }
    let values = store.map_take("given").await.unwrap();
    assert_eq!(values.len(), 10, "{values:?}");
    assert!(values.contains(&"v1009".to_owned()), "{values:?}");
    // Before it filled up, replacing kept every field.
    for i in 0..10 {
        store
            .map_put(&entry(&format!("f{i}"), "x", minute))
            .await
            .unwrap();
    }
    store.map_put(&entry("f3", "v3'", minute)).await.unwrap();
    let mut values = store.map_take("given").await.unwrap();
    values.sort();
    assert_eq!(values.iter().filter(|v| *v == "x").count(), 9);
    assert!(values.contains(&"v3'".to_owned()));
}

fn issued_under(session: &str, n: usize) -> Writes {
    let minute = Duration::from_secs(60);
    Writes {
        puts: vec![
            (format!("access-{n}"), format!("grant-{n}"), minute),
            (
                format!("refresh-{n}"),
                "é\n{\"family\":1}".to_owned(),
                minute,
            ),
        ],
        members: vec![SetMember {
            set: format!("grants-of-{session}"),
            member: format!("grant-{n}"),
            ttl: minute,
        }],
    }
}

async fn writes_while_live_are_made_all_together_only_while_the_guard_lives(
    store: Arc<dyn EphemeralStore>,
) {
    assert!(!store
        .write_while_live("sso:gone", &issued_under("gone", 1))
        .await
        .unwrap());
    assert_eq!(store.get("access-1").await.unwrap(), None);
    assert!(store
        .set_members("grants-of-gone")
        .await
        .unwrap()
        .is_empty());

    store
        .put("sso:live", "session", Duration::from_secs(60))
        .await
        .unwrap();
    assert!(store
        .write_while_live("sso:live", &issued_under("live", 2))
        .await
        .unwrap());
    assert_eq!(
        store.get("access-2").await.unwrap().as_deref(),
        Some("grant-2")
    );
    assert_eq!(
        store.get("refresh-2").await.unwrap().as_deref(),
        Some("é\n{\"family\":1}")
    );
    assert_eq!(
        store.set_members("grants-of-live").await.unwrap(),
        ["grant-2"]
    );
    // The records written live their TTL.
    let short = Writes {
        puts: vec![(
            "brief".to_owned(),
            "x".to_owned(),
            Duration::from_millis(200),
        )],
        members: Vec::new(),
    };
    assert!(store.write_while_live("sso:live", &short).await.unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(store.get("brief").await.unwrap(), None);
    assert_eq!(
        store.get("sso:live").await.unwrap().as_deref(),
        Some("session")
    );
}

async fn a_write_racing_the_guards_end_is_either_refused_or_seen_by_it(
    store: Arc<dyn EphemeralStore>,
) {
    store
        .put("sso:racing", "session", Duration::from_secs(60))
        .await
        .unwrap();
    let writers: Vec<_> = (0..60)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let written = store
                    .write_while_live("sso:racing", &issued_under("racing", n))
                    .await
                    .unwrap();
                (n, written)
            })
        })
        .collect();
    // A logout: the session goes, then what was issued under it is read, to be ended.
    tokio::time::sleep(Duration::from_millis(2)).await;
    store.delete("sso:racing").await.unwrap();
    let seen = store.set_members("grants-of-racing").await.unwrap();
    for writer in writers {
        let (n, written) = writer.await.unwrap();
        let grant = format!("grant-{n}");
        if written {
            assert!(
                seen.contains(&grant),
                "{grant} was issued after the logout read"
            );
        } else {
            assert_eq!(store.get(&format!("access-{n}")).await.unwrap(), None);
        }
    }
}

async fn exactly_one_of_100_concurrent_put_new_wins(store: Arc<dyn EphemeralStore>) {
    let writers: Vec<_> = (0..100)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let value = format!("writer-{i}");
                let won = store
                    .put_new("claim", &value, Duration::from_secs(60))
                    .await?;
                Ok::<_, StoreError>(won.then_some(value))
            })
        })
        .collect();
    let mut winners = Vec::new();
    for writer in writers {
        winners.extend(writer.await.unwrap().unwrap());
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(store.get("claim").await.unwrap(), winners.pop());
}

async fn delete_reports_whether_the_key_existed(store: Arc<dyn EphemeralStore>) {
    assert!(!store.delete("d").await.unwrap());
    store.put("d", "v", Duration::from_secs(60)).await.unwrap();
    assert!(store.delete("d").await.unwrap());
    assert!(!store.delete("d").await.unwrap());
    assert_eq!(store.get("d").await.unwrap(), None);
    // Sets too.
    store
        .set_add("ds", "m", Duration::from_secs(60))
        .await
        .unwrap();
    assert!(store.delete("ds").await.unwrap());
    assert!(store.set_members("ds").await.unwrap().is_empty());
}

async fn values_and_sets_expire_after_their_ttl(store: Arc<dyn EphemeralStore>) {
    let short = Duration::from_millis(300);
    store.put("v", "x", short).await.unwrap();
    store.put("t", "x", short).await.unwrap();
    assert!(store.put_new("n", "x", short).await.unwrap());
    store.set_add("s", "m", short).await.unwrap();
    store
        .put("long", "x", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(store.get("v").await.unwrap().as_deref(), Some("x"));

    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(store.get("v").await.unwrap(), None);
    assert_eq!(store.take("t").await.unwrap(), None);
    assert!(!store.delete("v").await.unwrap());
    assert!(store.set_members("s").await.unwrap().is_empty());
    assert!(store.put_new("n", "again", short).await.unwrap());
    assert_eq!(store.get("long").await.unwrap().as_deref(), Some("x"));
}

async fn set_add_extends_but_never_shortens_the_lifetime_of_a_set(store: Arc<dyn EphemeralStore>) {
    // Extended: a short set gets a long member.
    store
        .set_add("grows", "a", Duration::from_millis(300))
        .await
        .unwrap();
    store
        .set_add("grows", "b", Duration::from_secs(60))
        .await
        .unwrap();
    // Not shortened: a long set gets a short member.
    store
        .set_add("stays", "a", Duration::from_secs(60))
        .await
        .unwrap();
    store
        .set_add("stays", "b", Duration::from_millis(100))
        .await
        .unwrap();
    // Control: a short set alone expires.
    store
        .set_add("short", "a", Duration::from_millis(300))
        .await
        .unwrap();

    tokio::time::sleep(Duration::from_millis(700)).await;
    for key in ["grows", "stays"] {
        let mut members = store.set_members(key).await.unwrap();
        members.sort();
        assert_eq!(members, ["a", "b"], "{key}");
    }
    assert!(store.set_members("short").await.unwrap().is_empty());
}

async fn set_members_are_added_removed_and_listed(store: Arc<dyn EphemeralStore>) {
    let ttl = Duration::from_secs(60);
    assert!(store.set_members("sessions").await.unwrap().is_empty());
    for member in ["x", "y", "z", "x"] {
        store.set_add("sessions", member, ttl).await.unwrap();
    }
    let mut members = store.set_members("sessions").await.unwrap();
    members.sort();
    assert_eq!(members, ["x", "y", "z"]);

    store.set_remove("sessions", "y").await.unwrap();
    store.set_remove("sessions", "not-a-member").await.unwrap();
    store.set_remove("no-such-set", "x").await.unwrap();
    let mut members = store.set_members("sessions").await.unwrap();
    members.sort();
    assert_eq!(members, ["x", "z"]);

    store.set_remove("sessions", "x").await.unwrap();
    store.set_remove("sessions", "z").await.unwrap();
    assert!(store.set_members("sessions").await.unwrap().is_empty());
    // An emptied set is gone: it can be used as a new one.
    store.set_add("sessions", "w", ttl).await.unwrap();
    assert_eq!(store.set_members("sessions").await.unwrap(), ["w"]);
}

async fn attempts_are_counted_from_1_to_n(store: Arc<dyn EphemeralStore>) {
    for n in 1..=7 {
        let r = store
            .reserve_attempt("lockout:login:alice", at(i64::from(n)), WINDOW)
            .await
            .unwrap();
        assert_eq!(r, counted(n));
    }
}

async fn counters_of_different_keys_are_independent(store: Arc<dyn EphemeralStore>) {
    for _ in 0..3 {
        store.reserve_attempt("a", T0, WINDOW).await.unwrap();
    }
    store.lock_attempts("a", at(900), T0).await.unwrap();
    assert_eq!(
        store.reserve_attempt("b", T0, WINDOW).await.unwrap(),
        counted(1)
    );
    store.clear_attempts("b").await.unwrap();
    assert_eq!(
        store.reserve_attempt("a", T0, WINDOW).await.unwrap(),
        locked(at(900))
    );
}

async fn a_new_window_starts_once_the_window_has_passed(store: Arc<dyn EphemeralStore>) {
    let key = "lockout:login:bob";
    // The window starts with the first counted attempt, not on a fixed grid.
    assert_eq!(
        store.reserve_attempt(key, at(100), WINDOW).await.unwrap(),
        counted(1)
    );
    assert_eq!(
        store.reserve_attempt(key, at(500), WINDOW).await.unwrap(),
        counted(2)
    );
    assert_eq!(
        store.reserve_attempt(key, at(999), WINDOW).await.unwrap(),
        counted(3)
    );
    // 900 s after the first attempt: a new window, starting now.
    assert_eq!(
        store.reserve_attempt(key, at(1000), WINDOW).await.unwrap(),
        counted(1)
    );
    assert_eq!(
        store.reserve_attempt(key, at(1899), WINDOW).await.unwrap(),
        counted(2)
    );
    assert_eq!(
        store.reserve_attempt(key, at(1900), WINDOW).await.unwrap(),
        counted(1)
    );
    // Far in the future, too.
    assert_eq!(
        store
            .reserve_attempt(key, at(86_400 * 365), WINDOW)
            .await
            .unwrap(),
        counted(1)
    );
}

async fn a_lock_holds_until_now_passes_its_end_then_the_counter_is_forgotten(
    store: Arc<dyn EphemeralStore>,
) {
    let key = "lockout:login:carol";
    for n in 1..=5 {
        assert_eq!(
            store.reserve_attempt(key, T0, WINDOW).await.unwrap(),
            counted(n)
        );
    }
    store.lock_attempts(key, at(900), T0).await.unwrap();
    // While locked, attempts are refused and not counted.
    for now in [1, 450, 899] {
        assert_eq!(
            store.reserve_attempt(key, at(now), WINDOW).await.unwrap(),
            locked(at(900)),
            "at +{now}s"
        );
    }
    // Once the lock has ended, it is forgotten with the attempts that led to it.
    assert_eq!(
        store.reserve_attempt(key, at(900), WINDOW).await.unwrap(),
        counted(1)
    );
    assert_eq!(
        store.reserve_attempt(key, at(901), WINDOW).await.unwrap(),
        counted(2)
    );

    // A new lock replaces the previous one, even if it ends sooner.
    store.lock_attempts(key, at(5000), at(901)).await.unwrap();
    store.lock_attempts(key, at(2000), at(901)).await.unwrap();
    assert_eq!(
        store.reserve_attempt(key, at(1999), WINDOW).await.unwrap(),
        locked(at(2000))
    );
    assert_eq!(
        store.reserve_attempt(key, at(2000), WINDOW).await.unwrap(),
        counted(1)
    );

    // A lock that has already ended when written just resets the counter.
    store.reserve_attempt(key, at(2001), WINDOW).await.unwrap();
    store.lock_attempts(key, at(2001), at(2002)).await.unwrap();
    assert_eq!(
        store.reserve_attempt(key, at(2002), WINDOW).await.unwrap(),
        counted(1)
    );
}

async fn a_lock_ending_within_a_second_is_rounded_up(store: Arc<dyn EphemeralStore>) {
    let key = "lockout:login:dave";
    let until = at(900) + time::Duration::milliseconds(250);
    store.lock_attempts(key, until, T0).await.unwrap();
    // Never ends early: still locked at +900.9 s, reported as ending at +901 s.
    let almost = at(900) + time::Duration::milliseconds(900);
    assert_eq!(
        store.reserve_attempt(key, almost, WINDOW).await.unwrap(),
        locked(at(901))
    );
    assert_eq!(
        store.reserve_attempt(key, at(901), WINDOW).await.unwrap(),
        counted(1)
    );
}

async fn ranks_of_200_concurrent_attempts_are_1_to_200_each_once(store: Arc<dyn EphemeralStore>) {
    let attempts: Vec<_> = (0..200)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.reserve_attempt("lockout:ip:x", T0, WINDOW).await })
        })
        .collect();
    let mut ranks = Vec::new();
    for attempt in attempts {
        let r = attempt.await.unwrap().unwrap();
        assert_eq!(r.locked_until, None);
        ranks.push(r.attempt);
    }
    ranks.sort_unstable();
    assert_eq!(ranks, (1..=200).collect::<Vec<u32>>());
}

async fn clearing_forgets_the_counter_and_the_lock(store: Arc<dyn EphemeralStore>) {
    let key = "lockout:login:erin";
    for _ in 0..3 {
        store.reserve_attempt(key, T0, WINDOW).await.unwrap();
    }
    store.clear_attempts(key).await.unwrap();
    assert_eq!(
        store.reserve_attempt(key, at(1), WINDOW).await.unwrap(),
        counted(1)
    );

    store.lock_attempts(key, at(900), at(1)).await.unwrap();
    store.clear_attempts(key).await.unwrap();
    assert_eq!(
        store.reserve_attempt(key, at(2), WINDOW).await.unwrap(),
        counted(1)
    );
    // Clearing nothing is fine.
    store.clear_attempts("never-counted").await.unwrap();
}

async fn forgiving_gives_back_one_attempt_but_never_goes_below_zero(
    store: Arc<dyn EphemeralStore>,
) {
    let key = "lockout:ip:y";
    store.reserve_attempt(key, T0, WINDOW).await.unwrap();
    store.reserve_attempt(key, T0, WINDOW).await.unwrap();
    store.forgive_attempt(key).await.unwrap();
    assert_eq!(
        store.reserve_attempt(key, at(1), WINDOW).await.unwrap(),
        counted(2)
    );
    for _ in 0..5 {
        store.forgive_attempt(key).await.unwrap();
    }
    assert_eq!(
        store.reserve_attempt(key, at(2), WINDOW).await.unwrap(),
        counted(1)
    );
    // Forgiving an unknown counter does nothing.
    store.forgive_attempt("never-counted").await.unwrap();
    assert_eq!(
        store
            .reserve_attempt("never-counted", at(3), WINDOW)
            .await
            .unwrap(),
        counted(1)
    );
}

async fn using_a_key_as_the_wrong_kind_is_corrupt_data(store: Arc<dyn EphemeralStore>) {
    let ttl = Duration::from_secs(60);
    store.set_add("a-set", "m", ttl).await.unwrap();
    store.set_add("given", "m", ttl).await.unwrap();
    store.put("a-string", "v", ttl).await.unwrap();
    store
        .reserve_attempt("a-counter", T0, WINDOW)
        .await
        .unwrap();

    let corrupt = |r: Result<(), StoreError>, what: &str| {
        assert!(matches!(r, Err(StoreError::Corrupt(_))), "{what}: {r:?}");
    };
    corrupt(store.get("a-set").await.map(drop), "get on a set");
    corrupt(store.take("a-set").await.map(drop), "take on a set");
    corrupt(
        store.set_add("a-string", "m", ttl).await,
        "set_add on a string",
    );
    corrupt(
        store.set_members("a-string").await.map(drop),
        "members of a string",
    );
    corrupt(
        store
            .reserve_attempt("a-string", T0, WINDOW)
            .await
            .map(drop),
        "reserve on a string",
    );
    corrupt(store.get("a-counter").await.map(drop), "get on a counter");
    corrupt(
        store.map_put(&entry("f", "v", ttl)).await.map(drop),
        "map_put on a set",
    );
    corrupt(
        store.map_take("a-string").await.map(drop),
        "map_take on a string",
    );
    // Nothing was consumed by the refused take.
    assert_eq!(store.set_members("a-set").await.unwrap(), ["m"]);
    // `put` replaces whatever was there.
    store.put("a-set", "now a string", ttl).await.unwrap();
    assert_eq!(
        store.get("a-set").await.unwrap().as_deref(),
        Some("now a string")
    );
}

async fn the_store_answers_ping(store: Arc<dyn EphemeralStore>) {
    store.ping().await.unwrap();
}

// --- Redis only ---

#[tokio::test]
async fn redis_keys_carry_the_prefix_and_prefixes_do_not_see_each_other() {
    let Some(a) = redis_store().await else { return };
    let Some(b) = redis_store().await else { return };
    a.put("shared-name", "from a", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(b.get("shared-name").await.unwrap(), None);
    b.put("shared-name", "from b", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        a.get("shared-name").await.unwrap().as_deref(),
        Some("from a")
    );
    assert!(format!("{a:?}").contains("sesame-test:"));
}

#[tokio::test]
async fn redis_reports_its_eviction_policy() {
    let Some(store) = redis_store().await else {
        return;
    };
    let policy = store.eviction_policy().await.unwrap();
    assert!(!policy.is_empty());
    eprintln!("maxmemory-policy: {policy}");
}

#[tokio::test]
async fn a_redis_that_never_answers_fails_setup_within_the_budget() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let started = Instant::now();
    let result = RedisStore::connect(&url, "p:", Duration::from_millis(300)).await;
    assert!(
        matches!(
            result,
            Err(StoreSetupError::RedisTimeout(_) | StoreSetupError::Redis(_))
        ),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// A TCP proxy to Redis that can stall traffic (as a network partition or a slow link does)
/// and cut every connection (as a Redis restart does).
struct Proxy {
    url: String,
    stalled: Arc<AtomicBool>,
    connections: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        let stalled = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (flag, tasks) = (Arc::clone(&stalled), Arc::clone(&connections));
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(&upstream).await.unwrap();
                let flag = Arc::clone(&flag);
                let task = tokio::spawn(async move {
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::select! {
                        () = pump(client_read, server_write, Arc::clone(&flag)) => {}
                        () = pump(server_read, client_write, flag) => {}
                    }
                });
                tasks.lock().unwrap().push(task);
            }
        });
        Self {
            url,
            stalled,
            connections,
        }
    }

    fn stall(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::SeqCst);
    }

    fn cut_all(&self) {
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

/// Copies bytes one way, holding them back (not dropping them) while stalled.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    stalled: Arc<AtomicBool>,
) {
    let mut buf = vec![0_u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stalls_and_restarts_give_quick_unavailable_errors_and_then_recover() {
    let redis_url = test_redis_url();
    // Reachable at all?
    let Some(_direct) = redis_store().await else {
        return;
    };
    let upstream = redis_url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap()
        .rsplit('@')
        .next()
        .unwrap()
        .to_owned();
    let proxy = Proxy::start(upstream).await;
    let timeout = Duration::from_millis(300);
    let store = RedisStore::connect(&proxy.url, &random_prefix(), timeout)
        .await
        .unwrap();
    store
        .put("ST-1", "alice", Duration::from_secs(60))
        .await
        .unwrap();
    store
        .put("ST-2", "bob", Duration::from_secs(60))
        .await
        .unwrap();

    // Stalled link: each operation fails within its timeout, as Unavailable.
    proxy.stall(true);
    let started = Instant::now();
    let r = store.get("ST-1").await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    let r = store.reserve_attempt("k", T0, WINDOW).await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // Link back: late answers to the abandoned requests do not get mixed up with new ones.
    proxy.stall(false);
    assert_eq!(store.get("ST-2").await.unwrap().as_deref(), Some("bob"));
    assert_eq!(store.get("ST-1").await.unwrap().as_deref(), Some("alice"));

    // Connections cut (Redis restarted): the store reconnects by itself.
    proxy.cut_all();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match store.get("ST-2").await {
            Ok(value) => {
                assert_eq!(value.as_deref(), Some("bob"));
                break;
            }
            Err(StoreError::Unavailable(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("no recovery: {e}"),
        }
    }
    assert_eq!(store.take("ST-1").await.unwrap().as_deref(), Some("alice"));
    assert_eq!(store.take("ST-1").await.unwrap(), None);
}

/// A raw connection to the test Redis, to see and forge what the store wrote.
async fn raw_redis() -> ::redis::aio::MultiplexedConnection {
    ::redis::Client::open(test_redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The current Redis run id (`INFO server`).
async fn redis_run_id(raw: &mut ::redis::aio::MultiplexedConnection) -> String {
    let info: String = ::redis::cmd("INFO")
        .arg("server")
        .query_async(raw)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("run_id:"))
        .unwrap()
        .trim()
        .to_owned()
}

#[tokio::test]
async fn redis_records_of_an_earlier_redis_run_read_as_absent() {
    // What Redis holds after a restore from an older snapshot (security spec F03): records
    // written by the run before the restart. They must not count: a ticket consumed since the
    // snapshot would validate again, an ended session would come back.
    let prefix = random_prefix();
    let store = match RedisStore::connect(&test_redis_url(), &prefix, OP_TIMEOUT).await {
        Ok(store) => store,
        Err(e) => {
            skip_or_fail("Redis", &e);
            return;
        }
    };
    let mut raw = raw_redis().await;
    let run_id = redis_run_id(&mut raw).await;
    let ttl = Duration::from_secs(60);

    store.put("ST-now", "alice", ttl).await.unwrap();
    let stored: String = ::redis::cmd("GET")
        .arg(format!("{prefix}ST-now"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(stored, format!("{run_id}|alice"), "records carry the run");

    let earlier_run = "0".repeat(40);
    assert_ne!(earlier_run, run_id);
    for key in ["ST-old", "TGT-old", "session-old", "linked-old"] {
        let _: () = ::redis::cmd("SET")
            .arg(format!("{prefix}{key}"))
            .arg(format!("{earlier_run}|bob"))
            .arg("EX")
            .arg(60)
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    // An untagged value (a Sesame before tagging) counts as of an earlier run too.
    let _: () = ::redis::cmd("SET")
        .arg(format!("{prefix}untagged"))
        .arg("carol")
        .query_async(&mut raw)
        .await
        .unwrap();

    assert!(
        !store.replace("TGT-old", "revived", ttl).await.unwrap(),
        "a record of an earlier run is not there to be replaced"
    );
    assert_eq!(store.get("TGT-old").await.unwrap(), None);
    assert_eq!(store.take("ST-old").await.unwrap(), None);
    assert_eq!(store.get("untagged").await.unwrap(), None);
    assert!(
        store.put_new("session-old", "new", ttl).await.unwrap(),
        "a record of an earlier run does not block a new one"
    );
    assert_eq!(
        store.get("session-old").await.unwrap().as_deref(),
        Some("new")
    );
    assert_eq!(
        store
            .take_and_put("linked-old", &[("written", "x", ttl)])
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.get("written").await.unwrap(), None, "nothing stored");

    // A live record linking to a record of an earlier run sees that link as absent.
    let _: () = ::redis::cmd("SET")
        .arg(format!("{prefix}TGT-old"))
        .arg(format!("{earlier_run}|bob"))
        .query_async(&mut raw)
        .await
        .unwrap();
    store
        .put(
            "ST-linking",
            &linked_value(&["TGT-old", "ST-now"], "payload"),
            ttl,
        )
        .await
        .unwrap();
    let (payload, linked) = store.take_linked("ST-linking").await.unwrap().unwrap();
    assert_eq!(payload, "payload");
    assert_eq!(linked, [None, Some("alice".to_owned())]);

    // Reading a stale record removes it (one read through a link leaves it to expire).
    let exists = |key: &str| ::redis::cmd("EXISTS").arg(format!("{prefix}{key}")).clone();
    let untagged_left: i64 = exists("untagged").query_async(&mut raw).await.unwrap();
    assert_eq!(untagged_left, 0);
    let linked_left: i64 = exists("TGT-old").query_async(&mut raw).await.unwrap();
    assert_eq!(linked_left, 1);
}

#[tokio::test]
async fn redis_kept_records_survive_a_restart_when_the_deployment_says_so() {
    let prefix = random_prefix();
    let store = match RedisStore::connect(&test_redis_url(), &prefix, OP_TIMEOUT).await {
        Ok(store) => store,
        Err(e) => {
            skip_or_fail("Redis", &e);
            return;
        }
    };
    let keeping = store.clone().keep_records_across_restarts(true);
    let ttl = Duration::from_secs(60);
    keeping.put("TGT-kept", "alice", ttl).await.unwrap();
    let mut raw = raw_redis().await;
    let stored: String = ::redis::cmd("GET")
        .arg(format!("{prefix}TGT-kept"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(
        !stored.contains(&redis_run_id(&mut raw).await),
        "a kept record does not name the run: {stored}"
    );
    assert_eq!(
        keeping.get("TGT-kept").await.unwrap().as_deref(),
        Some("alice")
    );
    // Switching a deployment between the two modes voids the records of the other mode.
    assert_eq!(store.get("TGT-kept").await.unwrap(), None);
    store.put("TGT-run", "bob", ttl).await.unwrap();
    assert_eq!(keeping.get("TGT-run").await.unwrap(), None);
}
