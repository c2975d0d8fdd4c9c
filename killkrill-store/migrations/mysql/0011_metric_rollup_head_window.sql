-- Rollup reads filter the head by tenant, resolution, a window_start range
-- and a series IN list. The head's key leads with the flush, so every read
-- scanned the tenant's whole head, once per chunk of series ids. A
-- series-major index would dirty about a page per series on every flush,
-- the write cost the head exists to avoid; this one is time-major: a
-- flush's partials are for recent windows, so its entries land at the
-- index's end, and a read takes only its resolution and range (nothing at
-- all for a range older than the head's windows).
CREATE INDEX metric_rollup_head_window ON metric_rollup_head (tenant, resolution_ns, window_start);
