"""FHIR search over the index tables: parsing, SQL conditions, keyset paging, includes."""
