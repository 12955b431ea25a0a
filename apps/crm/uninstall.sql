-- Removing crm from a site: its tables go (a backup taken before keeps them).
drop table if exists deals;
drop table if exists contacts;
