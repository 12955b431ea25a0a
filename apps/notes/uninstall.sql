-- Removing notes from a site: its tables go (a backup taken before keeps them).
drop table if exists note_tags;
drop table if exists notes;
