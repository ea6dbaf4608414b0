DROP TABLE assistance_requests;
DROP TABLE account_disablements;
DROP TABLE password_change_requirements;
DROP TABLE account_blocks;
