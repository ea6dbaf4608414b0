DROP TABLE remembered_browsers;
