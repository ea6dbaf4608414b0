DROP TABLE mfa_grace;
