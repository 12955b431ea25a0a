-- crm 2.0.0: a deal's stage is one of a known set (existing values mapped onto it) with the date it closed, and
-- contacts' emails are stored lowercased, one contact per email.
update deals set stage = case lower(btrim(stage))
  when 'lead' then 'lead' when 'qualified' then 'qualified' when 'proposal' then 'proposal'
  when 'won' then 'won' when 'closed won' then 'won' when 'lost' then 'lost' when 'closed lost' then 'lost'
  else 'lead' end;
alter table deals add constraint deals_stage_known check (stage in ('lead', 'qualified', 'proposal', 'won', 'lost'));
alter table deals add column closed_at timestamptz;
update deals set closed_at = created_at where stage in ('won', 'lost');
update contacts set email = lower(btrim(email)) where email is not null;
create unique index contacts_email_unique on contacts (email) where email is not null;
