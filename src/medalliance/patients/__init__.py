"""Master patient index (PRODUCT.md B): one golden person per resident, local records
of each member, matching, merge and consent.
"""
