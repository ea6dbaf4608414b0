// @generated automatically by Diesel CLI.

diesel::table! {
    account_profiles (account_id) {
        account_id -> Text,
        hr_id -> Nullable<Text>,
        birth_date -> Nullable<Text>,
        national_id_hash -> Nullable<Text>,
        recovery_email -> Nullable<Text>,
        recovery_email_verified -> Bool,
        mobile -> Nullable<Text>,
        mobile_verified -> Bool,
        charter_version -> Nullable<Text>,
        charter_accepted_at -> Nullable<Int8>,
        directory_opt_in -> Bool,
        mail_redirect -> Nullable<Text>,
        mail_redirect_verified -> Bool,
        mail_keep_copy -> Bool,
        created_at -> Int8,
        updated_at -> Int8,
    }
}

diesel::table! {
    accounts (id) {
        id -> Text,
        login -> Text,
        email -> Nullable<Text>,
        given_name -> Text,
        family_name -> Text,
        affiliation -> Text,
        state -> Text,
        created_at -> Int8,
        updated_at -> Int8,
        search_name -> Text,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        name -> Text,
        key_sha256 -> Text,
        scopes -> Text,
        created_at -> Int8,
        expires_at -> Nullable<Int8>,
        revoked_at -> Nullable<Int8>,
        last_used_at -> Nullable<Int8>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        at -> Int8,
        kind -> Text,
        login -> Nullable<Text>,
        account_id -> Nullable<Text>,
        ip -> Nullable<Text>,
        actor -> Text,
        detail -> Text,
    }
}

diesel::table! {
    credentials (account_id) {
        account_id -> Text,
        password_hash -> Text,
        updated_at -> Int8,
    }
}

diesel::table! {
    login_locks (login_key) {
        login_key -> Text,
        locked_until -> Int8,
    }
}

// --- known devices (2026-12-01-001301_known_devices) ---

diesel::table! {
    known_devices (token_hash, account_id) {
        token_hash -> Text,
        account_id -> Text,
        first_seen -> Int8,
        last_seen -> Int8,
        locked_until -> Nullable<Int8>,
    }
}

diesel::joinable!(known_devices -> accounts (account_id));
diesel::allow_tables_to_appear_in_same_query!(known_devices, accounts);

diesel::table! {
    mail_queue (id) {
        id -> Text,
        created_at -> Int8,
        kind -> Text,
        account_id -> Nullable<Text>,
        recipient -> Text,
        subject -> Text,
        text_body -> Text,
        html_body -> Nullable<Text>,
        attempts -> Int4,
        next_attempt_at -> Int8,
        lease_until -> Nullable<Int8>,
        sent_at -> Nullable<Int8>,
        failed_at -> Nullable<Int8>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    oauth_consents (account_id, client_id) {
        account_id -> Text,
        client_id -> Text,
        scopes -> Text,
        granted_at -> Int8,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        alg -> Text,
        private_pkcs8_der -> Bytea,
        public_jwk -> Text,
        created_at -> Int8,
        active_from -> Int8,
        retired_at -> Nullable<Int8>,
        publish_until -> Nullable<Int8>,
    }
}

diesel::joinable!(account_profiles -> accounts (account_id));
diesel::joinable!(credentials -> accounts (account_id));
diesel::joinable!(mail_queue -> accounts (account_id));
diesel::joinable!(oauth_consents -> accounts (account_id));

diesel::allow_tables_to_appear_in_same_query!(
    account_profiles,
    accounts,
    api_keys,
    audit_events,
    credentials,
    login_locks,
    mail_queue,
    oauth_consents,
    signing_keys,
);

diesel::table! {
    activation_tokens (token_hash) {
        token_hash -> Text,
        account_id -> Text,
        kind -> Text,
        created_at -> Int8,
        expires_at -> Int8,
        used_at -> Nullable<Int8>,
        detail -> Nullable<Text>,
    }
}

diesel::joinable!(activation_tokens -> accounts (account_id));
diesel::allow_tables_to_appear_in_same_query!(activation_tokens, accounts);
// --- helpdesk (2026-11-28-000003_helpdesk) ---

diesel::table! {
    account_blocks (account_id) {
        account_id -> Text,
        reason -> Text,
        note -> Nullable<Text>,
        blocked_by -> Text,
        blocked_at -> Int8,
    }
}

diesel::table! {
    password_change_requirements (account_id) {
        account_id -> Text,
        required_since -> Int8,
        required_by -> Text,
    }
}

diesel::table! {
    account_disablements (account_id) {
        account_id -> Text,
        disabled_at -> Int8,
    }
}

diesel::table! {
    assistance_requests (reference) {
        reference -> Text,
        created_at -> Int8,
        institutional_email -> Text,
        personal_email -> Text,
        phone -> Text,
        identity_hint -> Text,
        description -> Text,
        lang -> Text,
        client_ip -> Nullable<Text>,
        account_id -> Nullable<Text>,
        closed_at -> Nullable<Int8>,
        closed_by -> Nullable<Text>,
        close_note -> Nullable<Text>,
        requester_kind -> Text,
        requester_name -> Text,
        requester_details -> Text,
    }
}

diesel::joinable!(account_blocks -> accounts (account_id));
diesel::joinable!(password_change_requirements -> accounts (account_id));
diesel::joinable!(account_disablements -> accounts (account_id));
diesel::joinable!(assistance_requests -> accounts (account_id));

diesel::allow_tables_to_appear_in_same_query!(
    account_blocks,
    password_change_requirements,
    account_disablements,
    assistance_requests,
    accounts,
);

// --- one identifier namespace (2026-11-30-000013_identifier_namespace) ---

diesel::table! {
    account_identifiers (identifier) {
        identifier -> Text,
        account_id -> Text,
    }
}

diesel::joinable!(account_identifiers -> accounts (account_id));
diesel::allow_tables_to_appear_in_same_query!(account_identifiers, accounts);

// --- second factors (2026-12-06-000001_second_factors) ---

diesel::table! {
    second_factors (id) {
        id -> Text,
        account_id -> Text,
        kind -> Text,
        label -> Text,
        sealed_secret -> Text,
        created_at -> Int8,
        last_used_at -> Nullable<Int8>,
    }
}

diesel::table! {
    recovery_codes (account_id, code_hash) {
        account_id -> Text,
        code_hash -> Text,
        created_at -> Int8,
    }
}

diesel::table! {
    mfa_grace (account_id) {
        account_id -> Text,
        logins_without_factor -> Int8,
        updated_at -> Int8,
    }
}

// --- passkeys (2026-12-06-000003_passkeys) ---

diesel::table! {
    passkeys (credential_id) {
        credential_id -> Text,
        factor_id -> Text,
        account_id -> Text,
        public_key -> Text,
        state -> Text,
    }
}

// --- remembered browsers (2026-12-06-000004_remembered_browsers) ---

diesel::table! {
    remembered_browsers (id) {
        id -> Text,
        account_id -> Text,
        token_hash -> Text,
        label -> Text,
        created_at -> Int8,
        expires_at -> Int8,
        last_used_at -> Nullable<Int8>,
    }
}
