DROP TABLE oauth_consents;
DROP TABLE signing_keys;
