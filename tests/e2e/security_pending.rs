//! Rows of the security spec whose feature is not built on this branch yet, or which belong
//! to the load suite rather than the functional one. Each test exists, named after its row,
//! and is ignored with the reason, so the coverage report lists it; when the feature lands,
//! its engineer replaces the placeholder with the real test (same name) and deletes it here.

const LIFECYCLE: &str = "activation, recovery and password change are the lifecycle milestone";

#[tokio::test]
#[ignore = "activation is not built yet (lifecycle milestone): codes, links and their rate limit"]
async fn a47_activation_codes_reused_expired_or_guessed_are_refused() {
    unreachable!("{LIFECYCLE}");
}

#[tokio::test]
#[ignore = "password reset is not built yet (lifecycle milestone)"]
async fn a48_reset_requests_for_known_and_unknown_addresses_look_the_same() {
    unreachable!("{LIFECYCLE}");
}

#[tokio::test]
#[ignore = "password reset is not built yet (lifecycle milestone)"]
async fn a49_reset_links_are_single_use_short_lived_and_superseded() {
    unreachable!("{LIFECYCLE}");
}

#[tokio::test]
#[ignore = "SMS codes are not built (no SMS gateway in this release)"]
async fn a50_sms_codes_expire_and_die_after_five_wrong_tries() {
    unreachable!("{LIFECYCLE}");
}

#[tokio::test]
#[ignore = "password reset is not built yet (lifecycle milestone)"]
async fn a51_the_new_password_step_needs_a_verified_token() {
    unreachable!("{LIFECYCLE}");
}

#[tokio::test]
#[ignore = "the account page's password change is not built yet (lifecycle milestone)"]
async fn a52_a_password_change_needs_the_current_password() {
    unreachable!("{LIFECYCLE}");
}

#[tokio::test]
#[ignore = "recovery e-mail change is not built yet (lifecycle milestone)"]
async fn a53_a_recovery_address_change_needs_re_authentication() {
    unreachable!("{LIFECYCLE}");
}

#[tokio::test]
#[ignore = "the admin block flow with its in-flight guarantees is being built with the admin API"]
async fn a55_a_flow_started_before_a_block_is_refused_after_it() {
    unreachable!("{LIFECYCLE}");
}

#[tokio::test]
#[ignore = "reset links and activation codes are not built yet (lifecycle milestone)"]
async fn c07_parallel_submissions_of_one_reset_link_succeed_once() {
    unreachable!("{LIFECYCLE}");
}

#[tokio::test]
#[ignore = "the admin block flow with its in-flight guarantees is being built with the admin API"]
async fn c11_an_admin_block_racing_logins_leaves_no_new_session() {
    unreachable!("{LIFECYCLE}");
}

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
