DROP TABLE account_identifiers;
