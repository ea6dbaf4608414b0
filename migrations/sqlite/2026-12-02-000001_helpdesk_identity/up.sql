-- The helpdesk's identity checks (issue 13, points 9 and 10).
-- Keep in step with ../../postgres/<same directory>/up.sql.

-- The given and family names folded for the console's search: lower case, accents dropped,
-- œ/æ/ß spelt out (sesame_core::ids::fold_for_search), so "Élodie" finds "elodie" the same
-- way on both databases (SQLite's lower() folds ASCII letters only). Written by the store
-- with the names; the rows already there are filled here with the same folding of the
-- letters of Latin-script names.
ALTER TABLE accounts ADD COLUMN search_name TEXT NOT NULL DEFAULT '';
UPDATE accounts SET search_name = given_name || ' ' || family_name;
UPDATE accounts SET search_name = REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(search_name, 'À', 'a'), 'Á', 'a'), 'Â', 'a'), 'Ã', 'a'), 'Ä', 'a'), 'Å', 'a'), 'à', 'a'), 'á', 'a');
UPDATE accounts SET search_name = REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(search_name, 'â', 'a'), 'ã', 'a'), 'ä', 'a'), 'å', 'a'), 'Ç', 'c'), 'ç', 'c'), 'È', 'e'), 'É', 'e');
UPDATE accounts SET search_name = REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(search_name, 'Ê', 'e'), 'Ë', 'e'), 'è', 'e'), 'é', 'e'), 'ê', 'e'), 'ë', 'e'), 'Ì', 'i'), 'Í', 'i');
UPDATE accounts SET search_name = REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(search_name, 'Î', 'i'), 'Ï', 'i'), 'ì', 'i'), 'í', 'i'), 'î', 'i'), 'ï', 'i'), 'Ñ', 'n'), 'ñ', 'n');
UPDATE accounts SET search_name = REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(search_name, 'Ò', 'o'), 'Ó', 'o'), 'Ô', 'o'), 'Õ', 'o'), 'Ö', 'o'), 'Ø', 'o'), 'ò', 'o'), 'ó', 'o');
UPDATE accounts SET search_name = REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(search_name, 'ô', 'o'), 'õ', 'o'), 'ö', 'o'), 'ø', 'o'), 'Ù', 'u'), 'Ú', 'u'), 'Û', 'u'), 'Ü', 'u');
UPDATE accounts SET search_name = REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(search_name, 'ù', 'u'), 'ú', 'u'), 'û', 'u'), 'ü', 'u'), 'Ý', 'y'), 'Ÿ', 'y'), 'ý', 'y'), 'ÿ', 'y');
UPDATE accounts SET search_name = REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(search_name, 'Ć', 'c'), 'Č', 'c'), 'ć', 'c'), 'č', 'c'), 'Š', 's'), 'Ś', 's'), 'š', 's'), 'ś', 's');
UPDATE accounts SET search_name = REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(search_name, 'Ž', 'z'), 'Ź', 'z'), 'Ż', 'z'), 'ž', 'z'), 'ź', 'z'), 'ż', 'z'), 'Ř', 'r'), 'ŕ', 'r');
UPDATE accounts SET search_name = REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(search_name, 'Ŕ', 'r'), 'ř', 'r'), 'Ě', 'e'), 'ę', 'e'), 'Ę', 'e'), 'ě', 'e'), 'Ů', 'u'), 'ů', 'u');
UPDATE accounts SET search_name = REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(search_name, 'Ū', 'u'), 'ū', 'u'), 'Ł', 'l'), 'ł', 'l'), 'Ĺ', 'l'), 'ĺ', 'l'), 'Ľ', 'l'), 'ľ', 'l');
UPDATE accounts SET search_name = REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(search_name, 'Ş', 's'), 'ş', 's'), 'Ğ', 'g'), 'ğ', 'g'), 'İ', 'i'), 'ı', 'i'), 'Ń', 'n'), 'ń', 'n');
UPDATE accounts SET search_name = REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(search_name, 'Ň', 'n'), 'ň', 'n'), 'Ő', 'o'), 'ő', 'o'), 'Ō', 'o'), 'ō', 'o'), 'Ā', 'a'), 'ā', 'a');
UPDATE accounts SET search_name = REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(search_name, 'Ă', 'a'), 'ă', 'a'), 'Ą', 'a'), 'ą', 'a'), 'Ď', 'd'), 'ď', 'd'), 'Đ', 'd'), 'đ', 'd');
UPDATE accounts SET search_name = REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(search_name, 'Ť', 't'), 'ť', 't'), 'Ţ', 't'), 'ţ', 't'), 'Œ', 'oe'), 'œ', 'oe'), 'Æ', 'ae'), 'æ', 'ae');
UPDATE accounts SET search_name = REPLACE(REPLACE(REPLACE(REPLACE(search_name, 'ß', 'ss'), '’', ''''), 'ʼ', ''''), '‘', '''');
UPDATE accounts SET search_name = TRIM(LOWER(search_name));

-- Assistance requests from every kind of person (issue 13, point 9): who they say they are
-- (staff, student, pupil, parent; the requests before this were from staff or students,
-- recorded as staff), their name, and the fields that fit only some of them (a pupil's school
-- and class, a parent's child's name and school) as a JSON object. The login or institutional
-- address, personal address, phone and staff or student number keep their columns
-- (`institutional_email` now holds a login or an address as typed; any may be empty).
ALTER TABLE assistance_requests ADD COLUMN requester_kind TEXT NOT NULL DEFAULT 'staff';
ALTER TABLE assistance_requests ADD COLUMN requester_name TEXT NOT NULL DEFAULT '';
ALTER TABLE assistance_requests ADD COLUMN requester_details TEXT NOT NULL DEFAULT '{}';
