"""Trust anyone can check (SPEC §4.9): the hash chain, signed heads, receipts."""
