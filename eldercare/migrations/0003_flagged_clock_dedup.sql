-- Redelivery of a message whose device clock was implausible: such rows are stored at the
-- receive time, so (device_id, seq, time) differs between copies. These partial indexes let
-- the writer find an earlier copy by (device_id, seq, device_time) cheaply.
-- depends: 0001_initial

CREATE INDEX bed_telemetry_flagged ON bed_telemetry (device_id, seq, device_time)
    WHERE device_time IS NOT NULL;
CREATE INDEX device_events_flagged ON device_events (device_id, seq, device_time)
    WHERE device_time IS NOT NULL;
