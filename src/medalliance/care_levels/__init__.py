"""Hierarchical care rules (分级诊疗): versioned disease catalogues by care level, referral
reasons and criteria, emergency pathways to the nearest designated centre, and the
level recommendation shown while writing a referral."""
