"""Who may see a patient's clinical data: care relationships (from facts other
institutions cannot fabricate alone), the patient's consent, and audited emergency
(break-the-glass) access."""
