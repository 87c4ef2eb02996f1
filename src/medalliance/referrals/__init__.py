"""Two-way referral (双向转诊): one workflow for up and down referrals modelled on FHIR
ServiceRequest + Task, the green channel, deadlines with escalation, the closed loop
(outcome back to the referrer, follow-up after a down referral) and the queues."""
