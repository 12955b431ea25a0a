-- Archives unpinned notes untouched for a year.
update notes set archived_at = now() where archived_at is null and not pinned and created_at < now() - interval '1 year';
