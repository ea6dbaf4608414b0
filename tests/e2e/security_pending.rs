//! Rows of the security spec that have no test of their own yet, or which belong
//! to the load suite rather than the functional one. Each test exists, named after its row,
//! and is ignored with the reason, so the coverage report lists it; when the feature lands,
//! its engineer replaces the placeholder with the real test (same name) and deletes it here.

#[tokio::test]
#[ignore = "load suite: a timing comparison under 50 % load needs a quiet machine, not the shared CI runner"]
async fn c16_unknown_and_known_logins_stay_indistinguishable_under_load() {
    unreachable!("run by hand with make bench");
}

#[tokio::test]
#[ignore = "load suite: a one-hour soak does not fit the CI time budget"]
async fn c17_an_hour_at_nominal_load_keeps_memory_connections_and_p99_flat() {
    unreachable!("run by hand with make bench");
}
