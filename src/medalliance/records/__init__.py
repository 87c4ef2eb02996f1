"""C — the shared health record: a FHIR R4 resource store (current + history), search
indexes filled at write time from the official search parameters, bundles and the
``/fhir`` routes of every type not served by a more specific domain."""
