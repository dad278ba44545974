-- The write (per partition, increasing) each signal was stored with. Signals are stored before
-- they are published; after a crash the processor republishes the partition's latest batch of
-- them, which a crash may have left unpublished (same signal_id, so consumers drop repeats).
ALTER TABLE signals
    ADD COLUMN batch UInt64 DEFAULT 0
