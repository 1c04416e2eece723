"""Intake: a night's extract files, read, typed and checked per the contract, into the raw lake
(landing zone, readers, row checks, mappings, ingest, the lake)."""
