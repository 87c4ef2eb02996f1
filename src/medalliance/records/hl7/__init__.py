"""HL7 v2 inbound (capability C): ER7 parsing, mapping of ADT^A01/A03/A04/A08 and ORU^R01 to
FHIR through the master patient index and the shared record, idempotency by sending facility
and message control ID, ACKs, the ``POST /api/hl7v2`` route and the MLLP listener."""
