"""Performance appraisal (capability L): indicator definitions as versioned data, fact
tables fed from records and referrals, incrementally maintained aggregates, the disease
spectrum, the dashboard pages and their CSV/XLSX exports."""
