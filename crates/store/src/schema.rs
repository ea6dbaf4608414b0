// @generated automatically by Diesel CLI.

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

diesel::joinable!(credentials -> accounts (account_id));
diesel::joinable!(oauth_consents -> accounts (account_id));

diesel::allow_tables_to_appear_in_same_query!(
    accounts,
    audit_events,
    credentials,
    login_locks,
    oauth_consents,
    signing_keys,
);
