ALTER TABLE assistance_requests DROP COLUMN requester_details;
ALTER TABLE assistance_requests DROP COLUMN requester_name;
ALTER TABLE assistance_requests DROP COLUMN requester_kind;
ALTER TABLE accounts DROP COLUMN search_name;
