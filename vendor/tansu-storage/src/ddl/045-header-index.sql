-- KeyFlow patch (see vendor/README.md): a fetch looks up each record's headers by
-- (topition, offset_id); without this index every lookup scanned the whole header table.

create index if not exists header_topition_offset_id on header (topition, offset_id);
