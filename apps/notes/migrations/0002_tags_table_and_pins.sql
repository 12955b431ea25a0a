-- notes 2.0.0: tags move from an array column into a table of their own (each note's tags kept), and notes can be
-- pinned and archived.
create table note_tags (
  note_id bigint not null references notes (id) on delete cascade,
  tag     text not null check (length(tag) between 1 and 50),
  primary key (note_id, tag)
);
insert into note_tags (note_id, tag)
select distinct n.id, btrim(t.tag) from notes n cross join lateral unnest(n.tags) as t(tag) where length(btrim(t.tag)) between 1 and 50;
alter table notes drop column tags;
alter table notes add column pinned boolean not null default false;
alter table notes add column archived_at timestamptz;
