DROP TABLE audit_events;
DROP TABLE login_locks;
DROP TABLE credentials;
DROP TABLE accounts;
